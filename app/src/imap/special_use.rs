//! Finding the account's Junk folder by its SPECIAL-USE attribute
//! (RFC 6154), so spam lands where the user's mail client already looks.

use super::conn::{Conn, deadline};
use super::{ImapError, Result};
use async_imap::types::NameAttribute;
use futures::TryStreamExt;

impl Conn {
    /// The selectable mailbox the server marks `\Junk`, if any. With the
    /// SPECIAL-USE and LIST-EXTENDED capabilities the attributes are asked
    /// for explicitly (`RETURN (SPECIAL-USE)`, RFC 5258 syntax); otherwise
    /// a plain LIST is read: RFC 6154 servers attach them to every LIST,
    /// and one without LIST-EXTENDED (hoodiecrow's Gmail emulation) answers
    /// the RETURN form with BAD.
    pub async fn junk_mailbox(&mut self) -> Result<Option<String>> {
        let t = self.timeout;
        let extended = self.has("SPECIAL-USE") && self.has("LIST-EXTENDED");
        let pattern = if extended { "* RETURN (SPECIAL-USE)" } else { "*" };
        deadline(t, "LIST", async {
            let refused = |e: async_imap::error::Error| match e {
                async_imap::error::Error::No(d) | async_imap::error::Error::Bad(d) => ImapError::Refused {
                    command: format!("LIST \"\" {pattern}"),
                    detail: super::server_text(&d),
                },
                e => e.into(),
            };
            let names: Vec<_> = self
                .session
                .list(Some(""), Some(pattern))
                .await
                .map_err(refused)?
                .try_collect()
                .await
                .map_err(refused)?;
            Ok(names
                .iter()
                .find(|n| {
                    let a = n.attributes();
                    a.contains(&NameAttribute::Junk) && !a.contains(&NameAttribute::NoSelect)
                })
                .map(|n| n.name().to_string()))
        })
        .await
    }
}
