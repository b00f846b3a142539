use super::WaMessageId;

/// How far an outbound message got, as WhatsApp reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Played,
    Failed,
}

impl DeliveryStatus {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "played" => Self::Played,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Failed => "failed",
        }
    }

    /// Webhooks arrive out of order; a status only replaces one of lower
    /// rank, so a late "sent" never hides a "read".
    pub fn rank(self) -> i64 {
        match self {
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read | Self::Played => 3,
            Self::Failed => 4,
        }
    }
}

/// A `statuses[]` entry of a webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusUpdate {
    pub message_id: WaMessageId,
    pub status: DeliveryStatus,
    pub timestamp: i64,
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    /// Whom the message went to (`recipient_id`, or the user id of people
    /// known by username): how a send that timed out is matched with the
    /// status of a message we did not know we had sent.
    pub recipient: Option<String>,
}
