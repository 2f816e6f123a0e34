//! Reading posted forms: `application/x-www-form-urlencoded` bodies of bounded size, checked
//! for the session's CSRF token before anything else is looked at.

use axum::body::Body;
use axum::extract::Request;
use http_body_util::{BodyExt, Limited};

use super::error::{WebError, WebResult};
use super::session::{Visitor, CSRF_FIELD};

/// Forms are small: names, versions, descriptions (at most 10,000 characters, encoded).
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The fields of a posted form, in order.
#[derive(Debug, Default)]
pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    pub fn parse(bytes: &[u8]) -> Form {
        Form {
            fields: url::form_urlencoded::parse(bytes).into_owned().collect(),
        }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every field, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every value of `name`, in order (checkboxes, repeated query parameters).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of `name`, trimmed, `None` when absent or blank.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }
}

/// Reads a posted form after checking its CSRF token against the visitor's session.
pub async fn read(visitor: &Visitor, request: Request) -> WebResult<Form> {
    let body: Body = request.into_body();
    let bytes = Limited::new(body, MAX_FORM_BYTES)
        .collect()
        .await
        .map_err(|_| WebError::BadForm("The form is too large or was cut off.".into()))?
        .to_bytes();
    let form = Form::parse(&bytes);
    visitor.check_csrf(form.get(CSRF_FIELD))?;
    Ok(form)
}

#[cfg(test)]
mod tests {
    use super::Form;

    #[test]
    fn fields_are_decoded_and_trimmed() {
        let form = Form::parse(b"name=my+model&description=%3Cb%3E&empty=++&name=second");
        assert_eq!(form.get("name"), Some("my model"));
        assert_eq!(form.text("description").as_deref(), Some("<b>"));
        assert_eq!(form.text("empty"), None);
        assert_eq!(form.text("missing"), None);
    }
}
