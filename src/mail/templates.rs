//! The bodies of our emails, compiled into the binary (`include_str!`), each as plain
//! text and HTML. `{name}` and `{link}` are filled in; the HTML gets them escaped.

use lettre::message::Mailbox;

use super::Email;

/// One kind of email.
pub struct Template {
    subject: &'static str,
    text: &'static str,
    html: &'static str,
}

pub const VERIFY_EMAIL: Template = Template {
    subject: "Confirm your email address",
    text: include_str!("templates/verify_email.txt"),
    html: include_str!("templates/verify_email.html"),
};

pub const RESET_PASSWORD: Template = Template {
    subject: "Reset your password",
    text: include_str!("templates/reset_password.txt"),
    html: include_str!("templates/reset_password.html"),
};

impl Template {
    /// The email to `to`, greeting `name` and carrying `link`.
    pub fn render(&self, to: Mailbox, name: &str, link: &str) -> Email {
        // `{link}` first: a name that reads "{link}" must stay text.
        let fill = |body: &str, name: &str, link: &str| {
            body.replace("{link}", link).replace("{name}", name)
        };
        Email {
            to,
            subject: self.subject.to_owned(),
            text: fill(self.text, name, link),
            html: fill(self.html, &escape_html(name), &escape_html(link)),
        }
    }
}

fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_bodies_carry_the_link_and_html_is_escaped() {
        let to: Mailbox = "ana@example.com".parse().expect("mailbox");
        let link = "https://m.example/verify-email?token=abc&x=1";
        let email = VERIFY_EMAIL.render(to, "<b>Ana</b> {link}", link);
        assert!(email.text.contains(link));
        assert!(email.text.contains("<b>Ana</b> {link}"));
        assert!(
            email
                .html
                .contains("https://m.example/verify-email?token=abc&amp;x=1")
        );
        assert!(email.html.contains("&lt;b&gt;Ana&lt;/b&gt; {link}"));
        assert!(!email.html.contains("<b>Ana"));
        let reset = RESET_PASSWORD.render(
            "ana@example.com".parse().expect("mailbox"),
            "Ana",
            "https://m.example/reset-password?token=t",
        );
        assert!(reset.text.contains("reset-password?token=t") && reset.html.contains("token=t"));
    }
}
