//! Page-number pagination as GitLab does it.

/// The page a client asked for (1-based) and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: usize,
    pub per_page: usize,
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

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            request: self.request,
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
                per_page: 100
            }
        );
        assert_eq!(first.next_page(), None);
        let empty = Page::of(Vec::<u8>::new(), PageRequest::default());
        assert_eq!(empty.total_pages(), 1);
    }
}
