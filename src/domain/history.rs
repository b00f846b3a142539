/// One exchange of the past. Either side may be empty: the person's words
/// nobody answered, or an agent writing first.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryTurn {
    pub user: String,
    pub assistant: String,
}
