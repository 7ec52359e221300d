//! Weekly availability slots: wall-clock times in the worker's timezone.
//!
//! Pure parsing and validation, unit-tested here; storage is in `services.rs`.

use crate::error::FieldError;

/// Minutes in a day; `24:00` is the exclusive end of the last minute.
pub const DAY_MINUTES: u16 = 24 * 60;

/// One validated slot: `[start, end)` in minutes since midnight on `weekday` (0 = Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    pub weekday: u8,
    pub start: u16,
    pub end: u16,
}

/// `"HH:MM"`, 00:00 to 24:00 (24:00 only as an end).
pub fn parse_time(text: &str) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (hours.parse().ok()?, minutes.parse().ok()?);
    let total = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && total <= DAY_MINUTES).then_some(total)
}

pub fn format_time(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Validates a whole weekly schedule: each slot well-formed, start < end, and no two
/// slots of a day overlapping (touching is fine). Errors name the slot (`slots[2]`).
pub fn validate(raw: &[(i64, &str, &str)]) -> Result<Vec<Slot>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut slots = Vec::with_capacity(raw.len());
    for (i, (weekday, start, end)) in raw.iter().enumerate() {
        let field = format!("slots[{i}]");
        let weekday = u8::try_from(*weekday).ok().filter(|d| *d <= 6);
        let (start_m, end_m) = (
            parse_time(start).filter(|m| *m < DAY_MINUTES),
            parse_time(end),
        );
        match (weekday, start_m, end_m) {
            (None, ..) => errors.push(FieldError::new(
                &field,
                "weekday must be 0 (Monday) to 6 (Sunday)",
            )),
            (_, None, _) | (_, _, None) => {
                errors.push(FieldError::new(&field, "start and end must be \"HH:MM\""))
            }
            (Some(_), Some(s), Some(e)) if s >= e => {
                errors.push(FieldError::new(&field, "start must be before end"))
            }
            (Some(weekday), Some(start), Some(end)) => slots.push((
                i,
                Slot {
                    weekday,
                    start,
                    end,
                },
            )),
        }
    }
    let mut sorted = slots.clone();
    sorted.sort_by_key(|(_, slot)| *slot);
    for pair in sorted.windows(2) {
        let ((_, a), (j, b)) = (pair[0], pair[1]);
        if a.weekday == b.weekday && b.start < a.end {
            errors.push(FieldError::new(
                format!("slots[{j}]"),
                "overlaps another slot of the same day",
            ));
        }
    }
    if errors.is_empty() {
        let mut slots: Vec<Slot> = slots.into_iter().map(|(_, s)| s).collect();
        slots.sort();
        Ok(slots)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn times_parse_strictly() {
        assert_eq!(parse_time("00:00"), Some(0));
        assert_eq!(parse_time("09:30"), Some(570));
        assert_eq!(parse_time("24:00"), Some(1440));
        for bad in [
            "24:01", "9:30", "09:60", "0930", "aa:bb", "", "-1:00", "09:30:00",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn touching_slots_are_fine_overlaps_are_not() {
        assert!(validate(&[(0, "09:00", "10:00"), (0, "10:00", "12:00")]).is_ok());
        let err = validate(&[(0, "09:00", "10:30"), (0, "10:00", "12:00")]).expect_err("overlap");
        assert_eq!(err[0].field, "slots[1]");
        assert!(
            validate(&[(0, "09:00", "10:30"), (1, "10:00", "12:00")]).is_ok(),
            "other day"
        );
    }

    #[test]
    fn bad_slots_are_named() {
        let err = validate(&[
            (7, "09:00", "10:00"),
            (0, "10:00", "10:00"),
            (1, "25:00", "26:00"),
            (2, "22:00", "24:00"),
        ])
        .expect_err("invalid");
        let fields: Vec<_> = err.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["slots[0]", "slots[1]", "slots[2]"]);
        assert!(
            validate(&[(0, "24:00", "24:00")]).is_err(),
            "24:00 is no start"
        );
    }

    proptest! {
        #[test]
        fn accepted_schedules_never_overlap(raw in proptest::collection::vec((0i64..7, 0u16..1440, 1u16..=1440), 0..12)) {
            let texts: Vec<(i64, String, String)> = raw.iter().map(|(d, s, e)| (*d, format_time(*s), format_time(*e))).collect();
            let refs: Vec<(i64, &str, &str)> = texts.iter().map(|(d, s, e)| (*d, s.as_str(), e.as_str())).collect();
            if let Ok(slots) = validate(&refs) {
                for a in &slots {
                    prop_assert!(a.start < a.end);
                    for b in &slots {
                        if a != b && a.weekday == b.weekday {
                            prop_assert!(a.end <= b.start || b.end <= a.start);
                        }
                    }
                }
            }
        }
    }
}
