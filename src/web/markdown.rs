//! Markdown descriptions rendered to HTML and sanitized: raw HTML in the source is shown as
//! text, and the result is cleaned again (no scripts, event handlers or `javascript:` links).

use std::collections::HashMap;

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};

/// A footnote's name as an id: letters and digits, the rest as `-`.
fn footnote_id(name: &str) -> String {
    let id: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("fn-{id}")
}

pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    // Footnotes are numbered by first reference; the definitions link back to the text.
    let mut numbers: HashMap<String, usize> = HashMap::new();
    let mut number_of = |name: &str| {
        let next = numbers.len() + 1;
        *numbers.entry(name.to_string()).or_insert(next)
    };
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        // Raw HTML in the source is shown as text: only markdown makes markup.
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::FootnoteReference(name) => {
            let n = number_of(&name);
            let id = footnote_id(&name);
            Event::InlineHtml(CowStr::from(format!(
                "<sup class=\"footnote-ref\"><a href=\"#{id}\" id=\"ref-{id}\">{n}</a></sup>"
            )))
        }
        Event::Start(Tag::FootnoteDefinition(name)) => {
            let n = number_of(&name);
            let id = footnote_id(&name);
            Event::Html(CowStr::from(format!(
                "<div class=\"footnote\" id=\"{id}\"><sup class=\"footnote-label\"><a href=\"#ref-{id}\">{n}</a></sup>"
            )))
        }
        Event::End(TagEnd::FootnoteDefinition) => Event::Html(CowStr::from("</div>")),
        other => other,
    });
    html::push_html(&mut unsafe_html, events);
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        // Only markdown makes these (raw HTML became text above): task list boxes, footnotes.
        .add_tags(["input"])
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .add_tag_attributes("div", ["id"])
        .add_tag_attributes("a", ["id"])
        .add_allowed_classes("sup", ["footnote-ref", "footnote-label"])
        .add_allowed_classes("div", ["footnote"])
        .add_allowed_classes("li", ["task"])
        .clean(&unsafe_html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn renders_markdown() {
        let html = render("# Fraud\n\n*fast* and `small`\n\n| a | b |\n|---|---|\n| 1 | 2 |");
        assert!(html.contains("<h1>Fraud</h1>"));
        assert!(html.contains("<em>fast</em>"));
        assert!(html.contains("<code>small</code>"));
        assert!(html.contains("<table>"));
    }

    #[test]
    fn task_lists_and_footnotes() {
        let html = render("- [x] trained\n- [ ] evaluated\n\nSee the paper.[^paper]\n\n[^paper]: He et al., 2016.\n");
        assert!(html.contains("type=\"checkbox\""), "{html}");
        assert!(html.contains("checked"), "{html}");
        assert!(html.contains("href=\"#fn-paper\""), "{html}");
        assert!(html.contains("id=\"fn-paper\""), "{html}");
        assert!(html.contains("He et al."), "{html}");
        let raw = render("<input type=\"text\" onfocus=\"alert(1)\">");
        assert!(!raw.contains("<input"), "raw HTML stays text: {raw}");
    }

    #[test]
    fn strips_what_could_run() {
        let html = render(
            "<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[x](javascript:alert(3))",
        );
        assert!(!html.contains("<script"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("javascript:"));
    }
}
