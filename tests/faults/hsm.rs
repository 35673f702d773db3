//! The SoftHSM2 token taken away and given back.

use crate::common::faults::*;
use crate::{check_outage, serial, sleep_ms, Outage};
use std::time::Duration;

#[test]
fn the_hsm_token_moved_away_for_12_s_and_back_the_beacon_resumes_within_two_periods_of_its_return()
{
    let _serial = serial();
    let Some(fx) = Fixture::new() else { return };
    let url = fx.sqlite_url();
    let beacon = fx.start("serve", &[], &[]);
    let watch = Watch::start(&url, 1);
    watch.wait_count(3, Duration::from_secs(30)).unwrap();

    let tokens = fx.token_dir();
    let away = tokens.with_extension("away");
    let moved = now_ms();
    std::fs::rename(&tokens, &away).unwrap();
    sleep_ms(12_000);
    std::fs::rename(&away, &tokens).unwrap();
    let back = now_ms();
    let (first, took) = recovered(&watch, moved + PERIOD_MS, back, "hsm-token");
    watch.wait_more(3);
    beacon.kill();
    let seen = watch.stop();

    let outage = Outage {
        name: "hsm-token",
        from_ms: moved + PERIOD_MS,
        to_ms: back,
        what: "the token was away for 12 s".into(),
        during: "while away",
        after: "after the token returned",
    };
    check_outage(&fx, &url, &seen, &outage, (first, took), "");
}
