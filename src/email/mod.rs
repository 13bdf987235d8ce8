//! License emails: rendered from templates (compiled-in defaults the seller can
//! override in the config folder), built as multipart text + HTML with lettre, and
//! delivered from the outbox by the in-process [`worker`].

pub mod worker;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use uuid::Uuid;

use crate::db::models::{License, Product};

/// The template files, by the name a seller gives an override in the templates folder.
pub const TEMPLATE_FILES: [(&str, &str); 6] = [
    (
        "license_email.subject.txt",
        include_str!("templates/license_email.subject.txt"),
    ),
    (
        "license_email.txt",
        include_str!("templates/license_email.txt"),
    ),
    (
        "license_email.html",
        include_str!("templates/license_email.html"),
    ),
    (
        "portal_link.subject.txt",
        include_str!("templates/portal_link.subject.txt"),
    ),
    ("portal_link.txt", include_str!("templates/portal_link.txt")),
    (
        "portal_link.html",
        include_str!("templates/portal_link.html"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("email template {name}: {source}")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("cannot read email template {path}: {source}")]
    TemplateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid address {0:?}")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("LICENSD_SMTP_URL is not a valid SMTP URL: {0}")]
    SmtpUrl(String),
    #[error("{0}")]
    Send(String),
}

/// The compiled templates.
pub struct Templates {
    env: minijinja::Environment<'static>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Templates")
    }
}

impl Templates {
    /// The defaults, each replaced by a file of the same name in `dir` if one exists.
    /// Every template is test-rendered, so a broken override fails at start-up.
    pub fn load(dir: Option<&Path>) -> Result<Self, EmailError> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        for (name, default) in TEMPLATE_FILES {
            let source = match dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => {
                    tracing::info!(template = %path.display(), "using email template override");
                    std::fs::read_to_string(&path)
                        .map_err(|source| EmailError::TemplateFile { path, source })?
                }
                None => default.to_owned(),
            };
            env.add_template_owned(name, source)
                .map_err(|source| EmailError::Template {
                    name: name.to_owned(),
                    source,
                })?;
        }
        let templates = Templates { env };
        let mut sample = LicenseEmail::sample();
        templates.render(&sample)?;
        sample.sign_in_link = Some("http://localhost/portal/sign-in?token=x".into());
        templates.render(&sample)?;
        Ok(templates)
    }

    fn render_one(&self, name: &str, ctx: &LicenseEmail) -> Result<String, EmailError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|source| EmailError::Template {
                name: name.to_owned(),
                source,
            })
    }

    /// Subject, text body, HTML body: the license email, or the portal sign-in email
    /// when `ctx` carries a sign-in link.
    pub fn render(&self, ctx: &LicenseEmail) -> Result<(String, String, String), EmailError> {
        let name = if ctx.sign_in_link.is_some() {
            "portal_link"
        } else {
            "license_email"
        };
        let subject = self.render_one(&format!("{name}.subject.txt"), ctx)?;
        // A subject is one line, whatever the template does.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok((
            subject,
            self.render_one(&format!("{name}.txt"), ctx)?,
            self.render_one(&format!("{name}.html"), ctx)?,
        ))
    }
}

/// What the license email templates see.
#[derive(Debug, Clone, Serialize)]
pub struct LicenseEmail {
    pub email: String,
    pub customer_name: Option<String>,
    /// The products' names, joined with ", ".
    pub product_names: String,
    pub licenses: Vec<LicenseLine>,
    pub public_url: String,
    /// Portal sign-in emails only: the single-use link.
    pub sign_in_link: Option<String>,
    /// Portal sign-in emails only: minutes the link works.
    pub link_minutes: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct LicenseLine {
    pub key: String,
    pub product_name: String,
    pub product_slug: String,
    pub max_activations: Option<i32>,
    /// `YYYY-MM-DD HH:MM UTC`, or none for a perpetual license.
    pub expires_at: Option<String>,
}

impl LicenseEmail {
    pub fn new(recipient: &str, rows: &[(License, Product)], public_url: &str) -> Self {
        let mut names: Vec<&str> = Vec::new();
        for (_, p) in rows {
            if !names.contains(&p.name.as_str()) {
                names.push(&p.name);
            }
        }
        LicenseEmail {
            email: recipient.to_owned(),
            customer_name: rows.iter().find_map(|(l, _)| l.customer_name.clone()),
            product_names: names.join(", "),
            licenses: rows
                .iter()
                .map(|(l, p)| LicenseLine {
                    key: l.key.clone(),
                    product_name: p.name.clone(),
                    product_slug: p.slug.clone(),
                    max_activations: l.max_activations,
                    expires_at: l
                        .expires_at
                        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
                })
                .collect(),
            public_url: public_url.to_owned(),
            sign_in_link: None,
            link_minutes: 0,
        }
    }

    fn sample() -> Self {
        LicenseEmail {
            email: "buyer@example.com".into(),
            customer_name: Some("Ada".into()),
            product_names: "App".into(),
            licenses: vec![LicenseLine {
                key: "XXXXX-XXXXX-XXXXX-XXXXX-XXXXX".into(),
                product_name: "App".into(),
                product_slug: "app".into(),
                max_activations: Some(3),
                expires_at: None,
            }],
            public_url: "http://localhost".into(),
            sign_in_link: None,
            link_minutes: 15,
        }
    }
}

/// Builds the message. Its Message-ID derives from the outbox id, so a receiving
/// system can tell a redelivery of the same email.
pub fn build_message(
    outbox_id: Uuid,
    from: &str,
    to: &str,
    (subject, text, html): (String, String, String),
) -> Result<Message, EmailError> {
    let from: Mailbox = from
        .parse()
        .map_err(|_| EmailError::Address(from.to_owned()))?;
    let to: Mailbox = to.parse().map_err(|_| EmailError::Address(to.to_owned()))?;
    let domain = from.email.domain().to_owned();
    Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{}@{domain}>", outbox_id.simple())))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )
        .map_err(|e| EmailError::Build(e.to_string()))
}

/// Where email goes: an SMTP server, or `.eml` files in a folder.
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        deadline: Duration,
    },
    Files(PathBuf),
}

/// Neither the SMTP URL nor its password is ever shown.
impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mailer::Smtp { .. } => f.write_str("Mailer::Smtp"),
            Mailer::Files(dir) => write!(f, "Mailer::Files({})", dir.display()),
        }
    }
}

/// Longest SMTP deadline accepted; the worker's claim lease must outlast any send.
pub const MAX_SMTP_TIMEOUT: Duration = Duration::from_secs(300);

impl Mailer {
    /// `connections`: the most SMTP connections kept open and reused, one per email
    /// being sent at once (the worker's `mail_concurrency`). `deadline`: the longest
    /// one message may take, from connecting to the server's answer after DATA.
    pub fn new(
        smtp_url: Option<&SecretString>,
        mail_dir: &Path,
        connections: u32,
        deadline: Duration,
    ) -> Result<Self, EmailError> {
        let deadline = deadline.clamp(Duration::from_millis(100), MAX_SMTP_TIMEOUT);
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    // lettre's error names the problem, not the URL.
                    .map_err(|e| EmailError::SmtpUrl(e.to_string()))?
                    // lettre's async transport applies this to the TCP connect only.
                    .timeout(Some(deadline))
                    .pool_config(PoolConfig::new().max_size(connections.max(1)))
                    .build();
                Ok(Mailer::Smtp {
                    transport,
                    deadline,
                })
            }
            None => Ok(Mailer::Files(mail_dir.to_owned())),
        }
    }

    pub async fn send(&self, message: Message) -> Result<(), EmailError> {
        match self {
            // The greeting, every command and DATA all fall under the deadline: a server
            // that accepts and then says nothing costs one deadline, not the worker.
            Mailer::Smtp {
                transport,
                deadline,
            } => match tokio::time::timeout(*deadline, transport.send(message)).await {
                Ok(sent) => sent
                    .map(|_| ())
                    .map_err(|e| EmailError::Send(format!("SMTP: {e}"))),
                Err(_) => Err(EmailError::Send(format!(
                    "SMTP: timed out: no complete answer within {} ms (LICENSD_SMTP_TIMEOUT_SECS)",
                    deadline.as_millis()
                ))),
            },
            Mailer::Files(dir) => {
                let dir = dir.clone();
                let name = format!("{}.eml", Uuid::new_v4());
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &bytes))
                    .await
                    .map_err(|e| EmailError::Send(e.to_string()))?
            }
        }
    }
}

/// Writes `dir/name` so that it either appears whole or not at all: a temporary file
/// in the same folder, synced, then renamed over the name. On any failure (a full
/// disk, say) the temporary file is removed and nothing is left behind.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), EmailError> {
    use std::io::Write;
    let failed = |e: std::io::Error| EmailError::Send(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(failed)?;
    let temp = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, dir.join(name))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(failed(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn debug_never_shows_the_smtp_url() {
        let url = SecretString::from("smtps://user:hunter2@smtp.example.com".to_owned());
        let mailer =
            Mailer::new(Some(&url), Path::new("/tmp"), 4, Duration::from_secs(30)).unwrap();
        let shown = format!("{mailer:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("example"),
            "{shown}"
        );
    }

    #[test]
    fn defaults_list_every_key_with_its_limit_and_expiry_and_escape_html() {
        let t = Templates::load(None).unwrap();
        let mut ctx = LicenseEmail::sample();
        ctx.product_names = "A <b>&</b> B".into();
        ctx.licenses.push(LicenseLine {
            key: "ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ".into(),
            product_name: "B".into(),
            product_slug: "b".into(),
            max_activations: None,
            expires_at: Some("2030-01-01 00:00 UTC".into()),
        });
        let (subject, text, html) = t.render(&ctx).unwrap();
        assert_eq!(subject, "Your license keys for A <b>&</b> B");
        for body in [&text, &html] {
            assert!(body.contains("XXXXX-XXXXX-XXXXX-XXXXX-XXXXX"));
            assert!(body.contains("ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ"));
            assert!(body.contains("unlimited") && body.contains("2030-01-01 00:00 UTC"));
            assert!(body.contains("never") && body.contains('3'));
        }
        assert!(
            html.contains("A &lt;b&gt;&amp;&lt;") && !html.contains("<b>"),
            "{html}"
        );
        let msg = build_message(
            Uuid::nil(),
            "licenses@shop.example",
            "a@b.example",
            (subject, text, html),
        )
        .unwrap();
        let raw = String::from_utf8(msg.formatted()).unwrap();
        assert!(
            raw.contains("Message-ID: <00000000000000000000000000000000@shop.example>"),
            "{raw}"
        );
    }

    #[test]
    fn a_broken_override_is_reported_at_load() {
        let dir = std::env::temp_dir().join(format!("licensd-tpl-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("license_email.txt"), "{% for %}").unwrap();
        let err = Templates::load(Some(&dir)).unwrap_err();
        assert!(err.to_string().contains("license_email.txt"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_eml_that_cannot_be_written_whole_leaves_nothing_behind() {
        let dir = std::env::temp_dir().join(format!("licensd-eml-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        write_atomically(&dir, "ok.eml", b"Subject: hi\r\n\r\nbody").unwrap();
        assert_eq!(
            std::fs::read(dir.join("ok.eml")).unwrap(),
            b"Subject: hi\r\n\r\nbody"
        );
        // A full disk: the temporary file is /dev/full, where every write fails (ENOSPC).
        std::os::unix::fs::symlink("/dev/full", dir.join(".full.eml.tmp")).unwrap();
        let err = write_atomically(&dir, "full.eml", &[b'x'; 4096]).unwrap_err();
        assert!(err.to_string().contains("No space left"), "{err}");
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["ok.eml"],
            "no partial, 0-byte or temporary file is left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
