//! Hours of a week in a time zone: `BUSINESS_HOURS` (when people of the
//! business answer, so the handoff reply can say whether someone is there
//! now and, if not, when they are), and when campaigns and queued
//! notifications may go out ([`SendingWindow`], with holidays).
//!
//! `Mon-Fri 08:00-17:00, Sat 08:00-12:00 Asia/Jakarta`: days (English or
//! Indonesian names, ranges such as `Mon-Fri` and lists such as
//! `Mon,Wed,Fri`), each followed by one or more time ranges, and a time zone
//! at the end. A time range right after another applies to the same days
//! (`Mon-Fri 08:00-12:00 13:00-17:00`). Empty: always open.
//!
//! Time zones are fixed offsets: the zones of Indonesia and its neighbours,
//! which have no daylight saving time, by their IANA names, and `UTC+7`
//! style offsets for anywhere else. That covers where this bot is used
//! without a time-zone database in the binary; a zone with daylight saving
//! is refused rather than silently off by an hour half the year.

use std::fmt::Write;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const MINUTE_MS: i64 = 60 * 1000;
const DAY_MINUTES: u16 = 24 * 60;

/// Monday first; `[english, indonesian, english full, indonesian short]`.
const DAYS: [[&str; 4]; 7] = [
    ["mon", "senin", "monday", "sen"],
    ["tue", "selasa", "tuesday", "sel"],
    ["wed", "rabu", "wednesday", "rab"],
    ["thu", "kamis", "thursday", "kam"],
    ["fri", "jumat", "friday", "jum"],
    ["sat", "sabtu", "saturday", "sab"],
    ["sun", "minggu", "sunday", "min"],
];
const DAY_NAMES_ID: [&str; 7] = ["Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"];

/// IANA zones without daylight saving time, with the name people use for
/// them in messages.
const ZONES: [(&str, i32, &str); 14] = [
    ("Asia/Jakarta", 7 * 60, "WIB"),
    ("Asia/Pontianak", 7 * 60, "WIB"),
    ("Asia/Makassar", 8 * 60, "WITA"),
    ("Asia/Jayapura", 9 * 60, "WIT"),
    ("Asia/Singapore", 8 * 60, "SGT"),
    ("Asia/Kuala_Lumpur", 8 * 60, "MYT"),
    ("Asia/Manila", 8 * 60, "PHT"),
    ("Asia/Bangkok", 7 * 60, "ICT"),
    ("Asia/Ho_Chi_Minh", 7 * 60, "ICT"),
    ("Asia/Dili", 9 * 60, "WIT"),
    ("Asia/Tokyo", 9 * 60, "JST"),
    ("Asia/Kolkata", 5 * 60 + 30, "IST"),
    ("UTC", 0, "UTC"),
    ("Etc/UTC", 0, "UTC"),
];

/// One day's opening minutes `[from, to)`, in order.
type Ranges = Vec<(u16, u16)>;

/// When the business answers. Built only by parsing, so it is always valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    /// Per weekday, Monday first; `None` is always open.
    week: Option<[Ranges; 7]>,
    offset_minutes: i32,
    zone_label: String,
    /// As written, to be stored and read again.
    source: String,
}

impl Default for BusinessHours {
    fn default() -> Self {
        Self { week: None, offset_minutes: 0, zone_label: "UTC".to_owned(), source: String::new() }
    }
}

impl BusinessHours {
    /// Reads a `BUSINESS_HOURS` value; the error says what is wrong in it.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self::default());
        }
        let (schedule, zone) = raw.rsplit_once(char::is_whitespace).ok_or_else(|| needs_zone(raw))?;
        let (offset_minutes, zone_label) = parse_zone(zone).ok_or_else(|| needs_zone(zone))?;
        let mut week: [Ranges; 7] = Default::default();
        let (mut days, mut last_days): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
        for item in schedule.split([',', ' ', '\t']).filter(|item| !item.is_empty()) {
            if item.starts_with(|c: char| c.is_ascii_digit()) {
                let range = parse_time_range(item)?;
                if !days.is_empty() {
                    last_days = std::mem::take(&mut days);
                }
                if last_days.is_empty() {
                    return Err(format!("{item} has no days before it (e.g. Mon-Fri {item})"));
                }
                for &day in &last_days {
                    week[day].push(range);
                }
            } else {
                days.extend(parse_days(item)?);
            }
        }
        if !days.is_empty() {
            return Err(format!("{} has no hours after it (e.g. {schedule} 08:00-17:00)", days_text(&days)));
        }
        for day in &mut week {
            day.sort_unstable();
            day.dedup();
            if day.windows(2).any(|pair| pair[1].0 < pair[0].1) {
                return Err("time ranges of one day overlap".to_owned());
            }
        }
        Ok(Self { week: Some(week), offset_minutes, zone_label, source: raw.to_owned() })
    }

    /// The hours as written (empty: always open).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether someone is there at `now` (Unix ms).
    pub fn is_open(&self, now: i64) -> bool {
        let Some(week) = &self.week else { return true };
        let (day, minute) = self.local(now);
        week[day].iter().any(|&(from, to)| (from..to).contains(&minute))
    }

    /// When someone is there next after `now`, said the way the handoff reply
    /// says it: "hari ini pukul 13.00 WIB", "besok pukul 08.00 WIB", "Senin
    /// pukul 08.00 WIB". `None` when always open or never.
    pub fn next_opening(&self, now: i64) -> Option<String> {
        let week = self.week.as_ref()?;
        let (today, minute) = self.local(now);
        for ahead in 0..=7 {
            let day = (today + ahead) % 7;
            let Some(&(from, _)) = week[day].iter().find(|&&(from, _)| ahead > 0 || from > minute) else { continue };
            let when = match ahead {
                0 => "hari ini".to_owned(),
                1 => "besok".to_owned(),
                _ => DAY_NAMES_ID[day].to_owned(),
            };
            return Some(format!("{when} pukul {} {}", clock(from), self.zone_label));
        }
        None
    }

    /// The first moment at or after `now` when it is open (`now` itself if
    /// open); `None` when never.
    pub fn next_open_at(&self, now: i64) -> Option<i64> {
        let Some(week) = &self.week else { return Some(now) };
        if self.is_open(now) {
            return Some(now);
        }
        let (today, minute) = self.local(now);
        let start_of_today = now - i64::from(minute) * MINUTE_MS - (now.rem_euclid(MINUTE_MS));
        for ahead in 0..=7 {
            let day = (today + ahead) % 7;
            if let Some(&(from, _)) = week[day].iter().find(|&&(from, _)| ahead > 0 || from > minute) {
                return Some(start_of_today + ahead as i64 * DAY_MS + i64::from(from) * MINUTE_MS);
            }
        }
        None
    }

    /// The calendar date at `now` in the zone, `YYYY-MM-DD`.
    pub fn local_date(&self, now: i64) -> String {
        civil_date((now + i64::from(self.offset_minutes) * MINUTE_MS).div_euclid(DAY_MS))
    }

    /// A moment written as `2026-12-07 09:00` (in the zone),
    /// `2026-12-07T09:00:00+07:00` or `2026-12-07T02:00:00Z`, as Unix ms.
    pub fn moment(&self, raw: &str) -> Result<i64, String> {
        let bad = || format!("{raw:?} is not a time such as 2026-12-07 09:00 or 2026-12-07T09:00:00+07:00");
        let raw = raw.trim();
        let (date, rest) = raw.split_at_checked(10).ok_or_else(bad)?;
        let rest = rest.strip_prefix(['T', ' ']).ok_or_else(bad)?;
        let (clock, offset) = match rest.find(['Z', 'z', '+', '-']) {
            Some(at) => {
                let (clock, zone) = rest.split_at(at);
                let offset = if zone.eq_ignore_ascii_case("z") {
                    0
                } else {
                    let (hours, minutes) = zone[1..].split_once(':').unwrap_or((&zone[1..], "0"));
                    let minutes = number::<i32>(hours).zip(number::<i32>(minutes)).ok_or_else(bad)?;
                    let sign = if zone.starts_with('-') { -1 } else { 1 };
                    sign * (minutes.0 * 60 + minutes.1)
                };
                (clock, offset)
            }
            None => (rest, self.offset_minutes),
        };
        let mut fields = date.split('-').map(|part| part.parse::<i64>().ok());
        let (Some(Some(year)), Some(Some(month)), Some(Some(day)), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad());
        };
        let mut clock_fields = clock.split(':').map(|part| number::<i64>(part.split('.').next().unwrap_or(part)));
        let (Some(Some(hour)), Some(Some(minute))) = (clock_fields.next(), clock_fields.next()) else {
            return Err(bad());
        };
        let second = clock_fields.next().flatten().unwrap_or(0);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 {
            return Err(bad());
        }
        // Howard Hinnant's days-from-civil algorithm.
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Ok(days * DAY_MS + (hour * 60 + minute) * MINUTE_MS + second * 1000 - i64::from(offset) * MINUTE_MS)
    }

    /// The start of the next calendar day after `now` in the zone.
    pub fn next_midnight(&self, now: i64) -> i64 {
        let offset = i64::from(self.offset_minutes) * MINUTE_MS;
        ((now + offset).div_euclid(DAY_MS) + 1) * DAY_MS - offset
    }

    /// The hours in Indonesian: "Senin–Jumat 08.00–17.00, Sabtu 08.00–12.00
    /// WIB"; "setiap saat" when always open.
    pub fn describe(&self) -> String {
        let Some(week) = &self.week else { return "setiap saat".to_owned() };
        let mut groups: Vec<(&Ranges, Vec<usize>)> = Vec::new();
        for (day, ranges) in week.iter().enumerate().filter(|(_, ranges)| !ranges.is_empty()) {
            match groups.iter_mut().find(|(same, _)| *same == ranges) {
                Some((_, days)) => days.push(day),
                None => groups.push((ranges, vec![day])),
            }
        }
        if groups.is_empty() {
            return "tutup".to_owned();
        }
        let mut text = String::new();
        for (ranges, days) in groups {
            if !text.is_empty() {
                text.push_str(", ");
            }
            text.push_str(&days_text(&days));
            let hours: Vec<String> =
                ranges.iter().map(|&(from, to)| format!("{}–{}", clock(from), clock(to))).collect();
            let _ = write!(text, " {}", hours.join(" dan "));
        }
        let _ = write!(text, " {}", self.zone_label);
        text
    }

    /// The weekday (Monday = 0) and minute of the day at `now` in the zone.
    fn local(&self, now: i64) -> (usize, u16) {
        let local = now + i64::from(self.offset_minutes) * MINUTE_MS;
        // 1 January 1970 was a Thursday.
        let day = (local.div_euclid(DAY_MS) + 3).rem_euclid(7) as usize;
        (day, (local.rem_euclid(DAY_MS) / MINUTE_MS) as u16)
    }
}

/// Days since the Unix epoch as a calendar date, `YYYY-MM-DD` (Howard
/// Hinnant's civil-from-days), so no date crate is needed.
pub fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// When messages nobody asked for right now (a campaign, an application's
/// queued notification) may go out: within the hours, never on a holiday.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendingWindow {
    pub hours: BusinessHours,
    /// Dates (`YYYY-MM-DD`, in the hours' zone) nothing goes out on.
    pub holidays: std::collections::BTreeSet<String>,
}

impl SendingWindow {
    /// The first moment at or after `now` a message may go out; `None`
    /// when never (no hours at all, or a year of holidays).
    pub fn next_allowed(&self, now: i64) -> Option<i64> {
        let mut at = now;
        for _ in 0..400 {
            if self.holidays.contains(&self.hours.local_date(at)) {
                at = self.hours.next_midnight(at);
                continue;
            }
            let open = self.hours.next_open_at(at)?;
            if open == at {
                return Some(at);
            }
            at = open;
        }
        None
    }
}

fn needs_zone(found: &str) -> String {
    let known: Vec<&str> = ZONES.iter().map(|(name, _, _)| *name).collect();
    format!(
        "must end with a time zone without daylight saving time ({}) or a fixed offset such as UTC+7, got {found:?}",
        known.join(", ")
    )
}

fn parse_zone(zone: &str) -> Option<(i32, String)> {
    if let Some((_, offset, label)) = ZONES.iter().find(|(name, _, _)| name.eq_ignore_ascii_case(zone)) {
        return Some((*offset, (*label).to_owned()));
    }
    if let Some((_, offset, label)) = ZONES.iter().find(|(_, _, label)| label.eq_ignore_ascii_case(zone)) {
        return Some((*offset, (*label).to_owned()));
    }
    let upper = zone.to_ascii_uppercase();
    let offset = upper.strip_prefix("UTC").or_else(|| upper.strip_prefix("GMT"))?;
    let (sign, offset) = match offset.as_bytes().first()? {
        b'+' => (1, &offset[1..]),
        b'-' => (-1, &offset[1..]),
        _ => return None,
    };
    let (hours, minutes) = offset.split_once(':').unwrap_or((offset, "0"));
    let (hours, minutes): (i32, i32) = (number(hours)?, number(minutes)?);
    if hours > 14 || minutes > 59 {
        return None;
    }
    Some((sign * (hours * 60 + minutes), format!("UTC{}", &zone[3..])))
}

fn number<T: std::str::FromStr>(digits: &str) -> Option<T> {
    (!digits.is_empty() && digits.len() <= 2 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// `Mon`, `Mon-Fri` (wrapping past Sunday too: `Fri-Mon`).
fn parse_days(item: &str) -> Result<Vec<usize>, String> {
    let day = |name: &str| {
        let name = name.to_ascii_lowercase().replace('\'', "");
        DAYS.iter().position(|names| names.contains(&name.as_str())).ok_or_else(|| {
            format!("{name:?} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun or Senin, Selasa, …, Minggu)")
        })
    };
    match item.split_once(['-', '–']) {
        None => Ok(vec![day(item)?]),
        Some((from, to)) => {
            let (from, to) = (day(from)?, day(to)?);
            let count = (to + 7 - from) % 7 + 1;
            Ok((0..count).map(|n| (from + n) % 7).collect())
        }
    }
}

/// `08:00-17:00` or `8.00–17.00`; `24:00` ends a day.
fn parse_time_range(item: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{item:?} is not a time range such as 08:00-17:00");
    let (from, to) = item.split_once(['-', '–']).ok_or_else(bad)?;
    let minute = |time: &str| -> Option<u16> {
        let (hours, minutes) = time.split_once([':', '.'])?;
        let (hours, minutes): (u16, u16) = (number(hours)?, number(minutes)?);
        (minutes < 60 && hours * 60 + minutes <= DAY_MINUTES).then_some(hours * 60 + minutes)
    };
    let (from, to) = (minute(from).ok_or_else(bad)?, minute(to).ok_or_else(bad)?);
    if from >= to {
        return Err(format!(
            "{item:?} ends before it starts (hours past midnight go on the next day, e.g. Fri 20:00-24:00, Sat 00:00-02:00)"
        ));
    }
    Ok((from, to))
}

fn clock(minute: u16) -> String {
    format!("{:02}.{:02}", minute / 60, minute % 60)
}

/// Days in Indonesian, consecutive runs as ranges: "Senin–Rabu, Jumat".
fn days_text(days: &[usize]) -> String {
    let mut sorted = days.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for day in sorted {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == day => *end = day,
            _ => runs.push((day, day)),
        }
    }
    let names: Vec<String> = runs
        .into_iter()
        .map(|(from, to)| match to - from {
            0 => DAY_NAMES_ID[from].to_owned(),
            1 => format!("{}, {}", DAY_NAMES_ID[from], DAY_NAMES_ID[to]),
            _ => format!("{}–{}", DAY_NAMES_ID[from], DAY_NAMES_ID[to]),
        })
        .collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monday 1 December 2025, 00:00 in Jakarta, as Unix ms.
    const MONDAY_JAKARTA: i64 = 1_764_522_000_000;

    fn at(day: i64, hour: i64, minute: i64) -> i64 {
        MONDAY_JAKARTA + day * DAY_MS + hour * 3_600_000 + minute * MINUTE_MS
    }

    #[test]
    fn weekdays_and_saturday_morning_in_jakarta() {
        let hours = BusinessHours::parse("Mon-Fri 08:00-17:00, Sat 08:00-12:00 Asia/Jakarta").unwrap();
        assert!(!hours.is_open(at(0, 7, 59)));
        assert!(hours.is_open(at(0, 8, 0)));
        assert!(hours.is_open(at(4, 16, 59)));
        assert!(!hours.is_open(at(4, 17, 0)));
        assert!(hours.is_open(at(5, 11, 0)));
        assert!(!hours.is_open(at(5, 12, 0)));
        assert!(!hours.is_open(at(6, 10, 0)));
        assert_eq!(hours.describe(), "Senin–Jumat 08.00–17.00, Sabtu 08.00–12.00 WIB");
    }

    #[test]
    fn sending_waits_for_the_hours_and_skips_holidays() {
        let hours = BusinessHours::parse("Mon-Sat 08:00-20:00 Asia/Jakarta").unwrap();
        assert_eq!(
            (civil_date(0), civil_date(19_782), civil_date(20_781)),
            ("1970-01-01".into(), "2024-02-29".into(), "2026-11-24".into())
        );
        assert_eq!(hours.local_date(at(0, 0, 0)), "2025-12-01");
        assert_eq!(hours.local_date(at(6, 23, 59)), "2025-12-07");
        assert_eq!(hours.local_date(at(0, 0, 0) - 1), "2025-11-30", "a millisecond before midnight in Jakarta");
        assert_eq!(hours.next_midnight(at(0, 13, 7)), at(1, 0, 0));
        assert_eq!(hours.moment("2025-12-01 09:30"), Ok(at(0, 9, 30)));
        assert_eq!(hours.moment("2025-12-01T09:30:00+07:00"), Ok(at(0, 9, 30)));
        assert_eq!(hours.moment("2025-12-01T02:30:00Z"), Ok(at(0, 9, 30)));
        assert_eq!(hours.moment("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
        assert!(hours.moment("2025-13-01 09:30").is_err() && hours.moment("besok").is_err());
        assert_eq!(hours.next_open_at(at(0, 9, 0)), Some(at(0, 9, 0)), "open now");
        assert_eq!(hours.next_open_at(at(0, 6, 30)), Some(at(0, 8, 0)));
        assert_eq!(hours.next_open_at(at(5, 20, 0)), Some(at(7, 8, 0)), "Saturday evening waits for Monday");
        let mut window = SendingWindow { hours, holidays: ["2025-12-01".to_owned()].into() };
        assert_eq!(window.next_allowed(at(0, 9, 0)), Some(at(1, 8, 0)), "the holiday is skipped");
        window.holidays.insert("2025-12-02".into());
        assert_eq!(window.next_allowed(at(0, 9, 0)), Some(at(2, 8, 0)));
        let never = SendingWindow { hours: BusinessHours::parse("Mon 08:00-09:00 UTC").unwrap(), ..Default::default() };
        assert!(never.next_allowed(0).is_some());
        let closed: std::collections::BTreeSet<String> =
            (0..500).map(|day| BusinessHours::default().local_date(day * DAY_MS)).collect();
        assert_eq!(SendingWindow { hours: BusinessHours::default(), holidays: closed }.next_allowed(0), None);
    }

    #[test]
    fn the_next_opening_is_said_relative_to_today() {
        let hours = BusinessHours::parse("Mon-Fri 08:00-12:00 13:00-17:00, Sat 08:00-12:00 Asia/Jakarta").unwrap();
        assert_eq!(hours.next_opening(at(0, 6, 0)).unwrap(), "hari ini pukul 08.00 WIB");
        assert_eq!(hours.next_opening(at(0, 12, 30)).unwrap(), "hari ini pukul 13.00 WIB");
        assert_eq!(hours.next_opening(at(0, 18, 0)).unwrap(), "besok pukul 08.00 WIB");
        assert_eq!(hours.next_opening(at(5, 12, 30)).unwrap(), "Senin pukul 08.00 WIB");
        assert_eq!(hours.describe(), "Senin–Jumat 08.00–12.00 dan 13.00–17.00, Sabtu 08.00–12.00 WIB");
    }

    #[test]
    fn lists_indonesian_names_and_other_zones() {
        let hours = BusinessHours::parse("Senin,Rabu,Jumat 9.00-15.00 Asia/Makassar").unwrap();
        // 9:00 in Makassar is 8:00 in Jakarta.
        assert!(hours.is_open(at(0, 8, 0)));
        assert!(!hours.is_open(at(1, 8, 0)));
        assert_eq!(hours.describe(), "Senin, Rabu, Jumat 09.00–15.00 WITA");
        let offset = BusinessHours::parse("Sat-Mon 00:00-24:00 UTC+7").unwrap();
        assert!(offset.is_open(at(6, 23, 59)) && offset.is_open(at(0, 0, 0)) && !offset.is_open(at(1, 0, 0)));
        assert_eq!(offset.describe(), "Senin, Sabtu, Minggu 00.00–24.00 UTC+7");
        let india = BusinessHours::parse("Mon 09:00-10:00 UTC+05:30").unwrap();
        assert!(india.is_open(at(0, 10, 31)) && !india.is_open(at(0, 10, 29)));
    }

    #[test]
    fn empty_is_always_open() {
        let hours = BusinessHours::parse("  ").unwrap();
        assert!(hours.is_open(at(6, 3, 0)));
        assert_eq!(hours.next_opening(at(6, 3, 0)), None);
        assert_eq!(hours.describe(), "setiap saat");
    }

    #[test]
    fn mistakes_are_explained() {
        for (raw, says) in [
            ("Mon-Fri 08:00-17:00", "time zone"),
            ("Mon-Fri 08:00-17:00 Europe/Berlin", "time zone"),
            ("Mon-Fri 08:00-17:00 UTC+15", "time zone"),
            ("Mon-Fry 08:00-17:00 Asia/Jakarta", "not a day"),
            ("Mon-Fri 8-17 Asia/Jakarta", "time range"),
            ("Mon-Fri 17:00-08:00 Asia/Jakarta", "ends before it starts"),
            ("Mon-Fri 08:00-25:00 Asia/Jakarta", "time range"),
            ("08:00-17:00 Asia/Jakarta", "no days"),
            ("Mon-Fri Asia/Jakarta", "no hours"),
            ("Mon 08:00-12:00 11:00-13:00 Asia/Jakarta", "overlap"),
        ] {
            let error = BusinessHours::parse(raw).unwrap_err();
            assert!(error.contains(says), "{raw}: {error}");
        }
    }
}
