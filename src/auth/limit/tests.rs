use super::*;

fn n(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).expect("non-zero")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

#[test]
fn only_failures_fill_a_clients_bucket() {
    let l = Limits::new(n(3), n(100));
    let (t, a) = (Instant::now(), ip("192.0.2.1"));
    for _ in 0..10 {
        assert!(l.allowed(a, "alice", t).is_ok(), "asking counts nothing");
    }
    for user in ["u1", "u2", "u3"] {
        l.failed(a, user, t);
    }
    let wait = l.allowed(a, "anyone", t).expect_err("three failures fill it");
    assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20), "{wait:?}");
    assert!(l.allowed(ip("192.0.2.2"), "u1", t).is_ok(), "other clients unaffected");
    // A third of a minute later one failure has drained away.
    assert!(l.allowed(a, "u1", t + Duration::from_secs(21)).is_ok());
}

/// Attack review of 9e8e3e0: successful sign-ins counted, and anyone could
/// lock any user out by name. Now one user's bucket is per client.
#[test]
fn a_user_is_limited_per_client_not_everywhere() {
    let l = Limits::new(n(1000), n(2));
    let (t, attacker, owner) = (Instant::now(), ip("198.51.100.7"), ip("192.0.2.1"));
    l.failed(attacker, "alice", t);
    l.failed(attacker, "alice", t);
    assert!(l.allowed(attacker, "alice", t).is_err());
    assert!(l.allowed(attacker, "bob", t).is_ok(), "other users unaffected");
    assert!(
        l.allowed(owner, "alice", t).is_ok(),
        "alice's own client is not locked out"
    );
    assert!(!l.braked("alice", t), "two failures do not brake");
}

#[test]
fn many_clients_failing_for_one_user_brake_but_never_refuse_a_fresh_client() {
    let l = Limits::new(n(1000), n(2));
    let t = Instant::now();
    for i in 0..(2 * BRAKE_FACTOR) {
        l.failed(ip(&format!("203.0.113.{i}")), "alice", t);
    }
    assert!(l.braked("alice", t));
    assert!(!l.braked("bob", t));
    assert!(l.allowed(ip("192.0.2.1"), "alice", t).is_ok(), "braked, not refused");
    assert!(!l.braked("alice", t + Duration::from_secs(60)), "the brake drains too");
}

#[test]
fn idle_buckets_are_forgotten() {
    let l = Limits::new(n(5), n(5));
    let t = Instant::now();
    l.failed(ip("192.0.2.1"), "alice", t);
    l.forget_idle(t + Duration::from_secs(1));
    assert_eq!(l.by_client.levels.lock().expect("lock").len(), 1, "not drained yet");
    l.forget_idle(t + Duration::from_secs(13));
    assert!(l.by_client.levels.lock().expect("lock").is_empty());
    assert!(l.by_user.levels.lock().expect("lock").is_empty());
}

#[test]
fn ipv4_mapped_addresses_share_the_ipv4_bucket() {
    let l = Limits::new(n(1), n(100));
    let t = Instant::now();
    l.failed(ip("::ffff:192.0.2.1"), "u", t);
    assert!(l.allowed(ip("192.0.2.1"), "v", t).is_err());
}

#[test]
fn retry_after_rounds_up() {
    assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
    assert_eq!(retry_after_secs(Duration::ZERO), 1);
    assert_eq!(retry_after_secs(Duration::from_millis(19_500)), 20);
    assert_eq!(retry_after_secs(Duration::from_secs(20)), 20);
}
