//! Pagination as GitLab does it: page numbers, and keyset pagination with a cursor.

use super::schema::Seek;

/// The page a client asked for: by number (1-based), or with keyset pagination after a
/// cursor (the opaque position the previous page ended at), and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub page: usize,
    pub per_page: usize,
    /// Keyset pagination: `Some(None)` for the first page, `Some(Some(cursor))` after one.
    pub keyset: Option<Option<Vec<u8>>>,
}

impl PageRequest {
    pub const DEFAULT_PER_PAGE: usize = 20;
    pub const MAX_PER_PAGE: usize = 100;

    /// Clamps client input the way GitLab does: page ≥ 1, 1 ≤ per_page ≤ 100.
    pub fn new(page: Option<usize>, per_page: Option<usize>) -> Self {
        PageRequest {
            page: page.unwrap_or(1).max(1),
            per_page: per_page
                .unwrap_or(Self::DEFAULT_PER_PAGE)
                .clamp(1, Self::MAX_PER_PAGE),
            keyset: None,
        }
    }

    /// Keyset pagination: the page after `cursor` (the first page without one).
    pub fn keyset(per_page: Option<usize>, cursor: Option<Vec<u8>>) -> Self {
        PageRequest {
            keyset: Some(cursor),
            ..PageRequest::new(None, per_page)
        }
    }

    /// A page size beyond the API's clamp, for callers inside the domain (MLflow's larger
    /// `max_results`).
    pub fn with_size(mut self, per_page: usize) -> Self {
        self.per_page = per_page.max(1);
        self
    }

    pub fn is_keyset(&self) -> bool {
        self.keyset.is_some()
    }

    pub fn cursor(&self) -> Option<&[u8]> {
        self.keyset.as_ref().and_then(|c| c.as_deref())
    }

    /// How many entries come before this page (0 with keyset pagination).
    pub fn offset(&self) -> usize {
        match self.keyset {
            Some(_) => 0,
            None => (self.page - 1).saturating_mul(self.per_page),
        }
    }

    /// Where the page starts in an ordered index.
    pub fn seek(&self) -> Seek {
        match self.cursor() {
            Some(cursor) => Seek::After(cursor.to_vec()),
            None => Seek::Offset(self.offset()),
        }
    }
}

impl PageRequest {
    /// Like [`PageRequest::new`], with a larger bound on `per_page` for listings of small
    /// items (a metric's history).
    pub fn up_to(page: Option<usize>, per_page: Option<usize>, max_per_page: usize) -> Self {
        PageRequest {
            page: page.unwrap_or(1).max(1),
            per_page: per_page
                .unwrap_or(Self::DEFAULT_PER_PAGE)
                .clamp(1, max_per_page.max(1)),
            keyset: None,
        }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest::new(None, None)
    }
}

/// One page of a listing and what the pagination headers need.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: usize,
    pub request: PageRequest,
    /// Where the next page starts, when there is one (keyset pagination's `Link: rel="next"`).
    pub next_cursor: Option<Vec<u8>>,
}

impl<T> Page<T> {
    /// Cuts one page out of a full, already ordered listing.
    pub fn of(all: Vec<T>, request: PageRequest) -> Page<T> {
        let total = all.len();
        let start = (request.page - 1).saturating_mul(request.per_page);
        let items = all.into_iter().skip(start).take(request.per_page).collect();
        Page {
            items,
            total,
            request,
            next_cursor: None,
        }
    }

    /// A page read from an index: its items, the kept total and the cursor after it.
    pub fn keyed(
        items: Vec<T>,
        total: usize,
        request: PageRequest,
        next_cursor: Option<Vec<u8>>,
    ) -> Page<T> {
        Page {
            items,
            total,
            request,
            next_cursor,
        }
    }

    pub fn total_pages(&self) -> usize {
        self.total.div_ceil(self.request.per_page).max(1)
    }

    pub fn next_page(&self) -> Option<usize> {
        (self.request.page < self.total_pages()).then_some(self.request.page + 1)
    }

    pub fn prev_page(&self) -> Option<usize> {
        (self.request.page > 1).then(|| (self.request.page - 1).min(self.total_pages()))
    }

    /// [`Page::map`] with a fallible `f`: the first error is the answer.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            total: self.total,
            request: self.request,
            next_cursor: self.next_cursor,
        })
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            request: self.request,
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cut_and_count() {
        let page = Page::of(
            (1..=45).collect::<Vec<_>>(),
            PageRequest::new(Some(3), Some(20)),
        );
        assert_eq!(page.items, (41..=45).collect::<Vec<_>>());
        assert_eq!(page.total_pages(), 3);
        assert_eq!(page.next_page(), None);
        assert_eq!(page.prev_page(), Some(2));
        let first = Page::of(
            (1..=45).collect::<Vec<_>>(),
            PageRequest::new(Some(0), Some(1000)),
        );
        assert_eq!(
            first.request,
            PageRequest {
                page: 1,
                per_page: 100,
                keyset: None,
            }
        );
        assert_eq!(first.next_page(), None);
        let empty = Page::of(Vec::<u8>::new(), PageRequest::default());
        assert_eq!(empty.total_pages(), 1);
    }
}
