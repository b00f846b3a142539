//! WhatsApp's customer-service window: a business may send free-form text
//! to a customer only within 24 hours of the customer's last message; after
//! that the Cloud API refuses it (error 131047) and only templates go out.
//! The web chat has no such window, nor do providers that speak as a linked
//! phone (Fonnte, WAHA): WhatsApp Web sends whatever the phone could.

/// How long after a customer's message free-form replies may reach them.
pub const CUSTOMER_SERVICE_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// When an agent may write to a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyWindow {
    /// The channel has no window (the web chat, Fonnte, WAHA).
    Always,
    /// Open until this moment (Unix ms); `None` when the customer never
    /// wrote, so it never opened.
    Until(Option<i64>),
}

impl ReplyWindow {
    /// The window of a conversation whose customer last wrote at
    /// `last_customer_message` (Unix ms, as we received it: WhatsApp's
    /// clock opened it a moment earlier, so the end is a little generous),
    /// on a channel that has one (`windowed`) or not.
    pub fn of(windowed: bool, last_customer_message: Option<i64>) -> Self {
        match windowed {
            false => ReplyWindow::Always,
            true => ReplyWindow::Until(last_customer_message.map(|at| at.saturating_add(CUSTOMER_SERVICE_WINDOW_MS))),
        }
    }

    pub fn open_at(self, now: i64) -> bool {
        match self {
            ReplyWindow::Always => true,
            ReplyWindow::Until(until) => until.is_some_and(|until| now < until),
        }
    }

    /// When it closes; `None` for a channel without a window and for one
    /// that never opened.
    pub fn open_until(self) -> Option<i64> {
        match self {
            ReplyWindow::Always => None,
            ReplyWindow::Until(until) => until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatsapp_closes_a_day_after_the_customer_last_wrote() {
        let window = ReplyWindow::of(true, Some(1_000));
        assert_eq!(window.open_until(), Some(1_000 + CUSTOMER_SERVICE_WINDOW_MS));
        assert!(window.open_at(1_000 + CUSTOMER_SERVICE_WINDOW_MS - 1));
        assert!(!window.open_at(1_000 + CUSTOMER_SERVICE_WINDOW_MS));
        let never = ReplyWindow::of(true, None);
        assert!(!never.open_at(0));
        assert_eq!(never.open_until(), None);
    }

    #[test]
    fn a_channel_without_a_window_is_always_open() {
        let window = ReplyWindow::of(false, None);
        assert!(window.open_at(i64::MAX));
        assert_eq!(window.open_until(), None);
    }
}
