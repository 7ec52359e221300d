//! Whether a booking fits a worker's weekly availability, read in the worker's timezone.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

use crate::worker::availability::Slot;

const DAY_SECONDS: u32 = 24 * 3600;

/// `[start, end)` must lie inside one slot, as wall-clock times in `tz` (DST included:
/// a booking across a clock change is measured by the clock on the wall). An empty
/// schedule means the worker takes bookings at any time.
pub fn fits(slots: &[Slot], tz: Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    if slots.is_empty() {
        return true;
    }
    let (local_start, local_end) = (start.with_timezone(&tz), end.with_timezone(&tz));
    let day = local_start.date_naive();
    let weekday = local_start.weekday().num_days_from_monday();
    let start_second = local_start.num_seconds_from_midnight();
    // The last instant inside the booking decides its day: ending "at midnight" works
    // even where a clock change skips local midnight (America/Santiago).
    let last = (end - chrono::Duration::nanoseconds(1)).with_timezone(&tz);
    let end_second = if local_end.date_naive() == day {
        local_end.num_seconds_from_midnight()
    } else if last.date_naive() == day {
        DAY_SECONDS // the slot end `24:00`
    } else {
        return false; // slots never cross midnight
    };
    if end_second <= start_second {
        // The clocks went back during the booking: the wall clock repeats an hour and
        // no single slot can be said to contain it.
        return false;
    }
    slots.iter().any(|slot| {
        u32::from(slot.weekday) == weekday
            && u32::from(slot.start) * 60 <= start_second
            && end_second <= u32::from(slot.end) * 60
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn slot(weekday: u8, start: &str, end: &str) -> Slot {
        let t = |s| crate::worker::availability::parse_time(s).expect("time");
        Slot {
            weekday,
            start: t(start),
            end: t(end),
        }
    }

    fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("unambiguous")
            .with_timezone(&Utc)
    }

    #[test]
    fn inside_one_slot_in_the_workers_timezone() {
        let tz: Tz = "Europe/Lisbon".parse().expect("tz");
        // 2026-11-23 is a Monday (weekday 0).
        let slots = [slot(0, "09:00", "12:00"), slot(0, "12:00", "18:00")];
        let start = at(tz, 2026, 11, 23, 10, 0);
        assert!(fits(
            &slots,
            tz,
            start,
            start + chrono::Duration::minutes(60)
        ));
        assert!(
            fits(
                &slots,
                tz,
                at(tz, 2026, 11, 23, 9, 0),
                at(tz, 2026, 11, 23, 12, 0)
            ),
            "touching both ends"
        );
        assert!(
            !fits(
                &slots,
                tz,
                at(tz, 2026, 11, 23, 11, 30),
                at(tz, 2026, 11, 23, 12, 30)
            ),
            "across two slots"
        );
        assert!(!fits(
            &slots,
            tz,
            at(tz, 2026, 11, 23, 8, 30),
            at(tz, 2026, 11, 23, 9, 30)
        ));
        assert!(
            !fits(
                &slots,
                tz,
                at(tz, 2026, 11, 24, 10, 0),
                at(tz, 2026, 11, 24, 11, 0)
            ),
            "Tuesday"
        );
        assert!(
            fits(&[], tz, start, start + chrono::Duration::minutes(60)),
            "no schedule, no limit"
        );
    }

    #[test]
    fn the_same_instant_reads_differently_elsewhere() {
        let lisbon: Tz = "Europe/Lisbon".parse().expect("tz");
        let tokyo: Tz = "Asia/Tokyo".parse().expect("tz");
        let slots = [slot(0, "09:00", "12:00")];
        let start = at(lisbon, 2026, 11, 23, 10, 0);
        let end = start + chrono::Duration::minutes(60);
        assert!(fits(&slots, lisbon, start, end));
        assert!(!fits(&slots, tokyo, start, end), "19:00 in Tokyo");
    }

    #[test]
    fn midnight_is_the_end_of_the_day() {
        let tz: Tz = "UTC".parse().expect("tz");
        let slots = [slot(6, "22:00", "24:00")];
        // 2026-11-29 is a Sunday.
        assert!(fits(
            &slots,
            tz,
            at(tz, 2026, 11, 29, 23, 0),
            at(tz, 2026, 11, 30, 0, 0)
        ));
        assert!(!fits(
            &slots,
            tz,
            at(tz, 2026, 11, 29, 23, 30),
            at(tz, 2026, 11, 30, 0, 30)
        ));
    }

    #[test]
    fn a_booking_across_the_fall_back_is_refused() {
        let tz: Tz = "Europe/Lisbon".parse().expect("tz");
        // Sunday 2026-10-25: 02:00 summer time becomes 01:00 winter time (weekday 6).
        let slots = [slot(6, "01:30", "02:00")];
        let start = Utc
            .with_ymd_and_hms(2026, 10, 25, 0, 45, 0)
            .single()
            .expect("utc"); // 01:45 WEST
        assert!(
            !fits(&slots, tz, start, start + chrono::Duration::minutes(30)),
            "ends 01:15 WET"
        );
    }

    #[test]
    fn midnight_skipped_by_a_clock_change_still_ends_the_day() {
        let tz: Tz = "America/Santiago".parse().expect("tz");
        // Saturday 2026-09-05: at 24:00 the clocks jump to 01:00 on Sunday.
        let slots = [slot(5, "22:00", "24:00")];
        let start = Utc
            .with_ymd_and_hms(2026, 9, 6, 3, 0, 0)
            .single()
            .expect("utc"); // 23:00 local (UTC-4)
        let end = start + chrono::Duration::minutes(60);
        assert_eq!(
            end.with_timezone(&tz).format("%a %H:%M").to_string(),
            "Sun 01:00",
            "local midnight is skipped"
        );
        assert!(fits(&slots, tz, start, end));
    }

    #[test]
    fn dst_in_lisbon_is_read_on_the_wall_clock() {
        let tz: Tz = "Europe/Lisbon".parse().expect("tz");
        // Spring forward: Sunday 2026-03-29, 01:00 becomes 02:00 (weekday 6).
        let slots = [slot(6, "00:00", "02:00"), slot(6, "09:00", "10:00")];
        let start = at(tz, 2026, 3, 29, 0, 30);
        // 60 real minutes from 00:30 end at 02:30 on the wall: outside the 00:00-02:00 slot.
        assert!(!fits(
            &slots,
            tz,
            start,
            start + chrono::Duration::minutes(60)
        ));
        // 30 minutes end at 01:00 UTC = 02:00 local: exactly the slot's end.
        assert!(fits(
            &slots,
            tz,
            start,
            start + chrono::Duration::minutes(30)
        ));
        // After the change, 09:00 local is 08:00 UTC (summer time), not 09:00 UTC.
        let nine = Utc
            .with_ymd_and_hms(2026, 3, 29, 8, 0, 0)
            .single()
            .expect("utc");
        assert!(fits(&slots, tz, nine, nine + chrono::Duration::minutes(60)));
        let nine_utc = Utc
            .with_ymd_and_hms(2026, 3, 29, 9, 0, 0)
            .single()
            .expect("utc");
        assert!(
            !fits(
                &slots,
                tz,
                nine_utc,
                nine_utc + chrono::Duration::minutes(60)
            ),
            "10:00 local"
        );
        // The week before (winter time), 09:00 local is 09:00 UTC.
        let before = Utc
            .with_ymd_and_hms(2026, 3, 22, 9, 0, 0)
            .single()
            .expect("utc");
        assert!(fits(
            &slots,
            tz,
            before,
            before + chrono::Duration::minutes(60)
        ));
    }
}
