use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::flags::Op;
use crate::flags::fixtures::checkout_flag;

fn cond(attr: &str, op: Op, value: Value) -> Condition {
    Condition {
        attr: attr.to_owned(),
        op,
        value,
    }
}

fn rollout(pairs: &[(&str, u32)]) -> Serve {
    Serve::Rollout(pairs.iter().map(|(v, p)| ((*v).to_owned(), *p)).collect())
}

/// The issue's case: the rollout moves from 10 % to 50 % and the rollout rule gains a
/// condition. Each reads as itself, not as "rule 2 of 2 changed".
#[test]
fn a_rollout_move_and_an_added_condition_read_as_themselves() {
    let old = checkout_flag();
    let mut new = old.clone();
    new.rules[1].serve = rollout(&[("on", 50), ("off", 50)]);
    new.rules[1]
        .when
        .push(cond("country", Op::In, json!(["DE", "FR"])));
    let r = review_flag("new-checkout", Some(&old), Some(&new));
    assert_eq!(r.mark, Mark::Changed);
    assert_eq!(r.rules.len(), 2);
    assert_eq!(r.rules[0].mark, Mark::Same);
    let rule = &r.rules[1];
    assert_eq!(
        (rule.mark, rule.old_position, rule.new_position),
        (Mark::Changed, Some(2), Some(2))
    );
    assert_eq!(rule.conditions.len(), 1);
    assert_eq!(rule.conditions[0].mark, Mark::Added);
    assert_eq!(
        rule.serve.weights,
        vec![
            WeightDiff {
                variant: "off".into(),
                mark: Mark::Changed,
                old: Some(90),
                new: Some(50)
            },
            WeightDiff {
                variant: "on".into(),
                mark: Mark::Changed,
                old: Some(10),
                new: Some(50)
            },
        ]
    );
    assert_eq!(
        r.changes,
        vec![
            r#"rule 2: condition added: country in ["DE","FR"]"#.to_owned(),
            "rule 2: rollout off 90% → 50%, on 10% → 50%".to_owned(),
        ]
    );
    for part in [&r.enabled.mark, &r.default.mark, &r.flag_type.mark] {
        assert_eq!(*part, Mark::Same);
    }
}

#[test]
fn scalars_and_variants_are_marked_one_by_one() {
    let old = checkout_flag();
    let mut new = old.clone();
    new.enabled = false;
    new.default_variant = "on".into();
    new.description = Some("New checkout".into());
    new.variants.insert("on".into(), json!("yes"));
    new.variants.insert("beta".into(), json!(true));
    new.variants.remove("off");
    let r = review_flag("new-checkout", Some(&old), Some(&new));
    assert_eq!(r.enabled.mark, Mark::Changed);
    assert_eq!((r.enabled.old, r.enabled.new), (Some(true), Some(false)));
    assert_eq!(r.default.mark, Mark::Changed);
    assert_eq!(r.description.mark, Mark::Added);
    let marks: Vec<(&str, Mark)> = r
        .variants
        .iter()
        .map(|v| (v.name.as_str(), v.mark))
        .collect();
    assert_eq!(
        marks,
        [
            ("beta", Mark::Added),
            ("off", Mark::Removed),
            ("on", Mark::Changed)
        ]
    );
    assert_eq!(
        r.changes,
        vec![
            "enabled true → false",
            "default `off` → `on`",
            "description added",
            "variant `beta` added: true",
            "variant `off` removed (was false)",
            r#"variant `on` true → "yes""#,
        ]
    );
}

#[test]
fn a_changed_condition_names_the_part_that_changed() {
    let old = checkout_flag();
    let mut new = old.clone();
    new.rules[0].when[0].value = json!("@raxx.io");
    let r = review_flag("new-checkout", Some(&old), Some(&new));
    let c = &r.rules[0].conditions[0];
    assert_eq!(c.mark, Mark::Changed);
    assert_eq!(c.parts, vec![ConditionPart::Value]);
    assert_eq!(
        r.changes,
        vec![r#"rule 1: condition email ends_with "@raxx.app" → email ends_with "@raxx.io""#]
    );
    // Another attribute is another condition: one removed, one added.
    let mut other = old.clone();
    other.rules[0].when[0].attr = "login".into();
    let r = review_flag("new-checkout", Some(&old), Some(&other));
    let marks: Vec<Mark> = r.rules[0].conditions.iter().map(|c| c.mark).collect();
    assert_eq!(marks, [Mark::Removed, Mark::Added]);
}

#[test]
fn an_inserted_rule_does_not_make_every_later_rule_changed() {
    let old = checkout_flag();
    let mut new = old.clone();
    new.rules.insert(
        0,
        Rule {
            when: vec![cond("plan", Op::Eq, json!("pro"))],
            serve: Serve::Variant("on".into()),
        },
    );
    let r = review_flag("new-checkout", Some(&old), Some(&new));
    let shape: Vec<(Mark, Option<usize>, Option<usize>)> = r
        .rules
        .iter()
        .map(|x| (x.mark, x.old_position, x.new_position))
        .collect();
    assert_eq!(
        shape,
        [
            (Mark::Added, None, Some(1)),
            (Mark::Same, Some(1), Some(2)),
            (Mark::Same, Some(2), Some(3)),
        ]
    );
    assert_eq!(
        r.changes,
        vec![
            r#"rule 1 added: when plan eq "pro" → serve on"#,
            "rule 1 moved to position 2",
            "rule 2 moved to position 3",
        ]
    );
}

#[test]
fn rules_with_nothing_in_common_read_as_removed_and_added() {
    let mut old = checkout_flag();
    old.rules = vec![Rule {
        when: vec![],
        serve: rollout(&[("on", 10), ("off", 90)]),
    }];
    let mut new = old.clone();
    new.rules = vec![Rule {
        when: vec![cond("plan", Op::Eq, json!("pro"))],
        serve: Serve::Variant("on".into()),
    }];
    let r = review_flag("new-checkout", Some(&old), Some(&new));
    let marks: Vec<Mark> = r.rules.iter().map(|x| x.mark).collect();
    assert_eq!(marks, [Mark::Removed, Mark::Added]);
    assert_eq!(
        r.changes,
        vec![
            "rule 1 removed: always → rollout off 90%, on 10%",
            r#"rule 1 added: when plan eq "pro" → serve on"#,
        ]
    );
    // A variant rule becoming a rollout, with the same condition, is one changed rule.
    let mut split = old.clone();
    split.rules = vec![Rule {
        when: vec![cond("plan", Op::Eq, json!("pro"))],
        serve: rollout(&[("on", 50), ("off", 50)]),
    }];
    let r = review_flag("new-checkout", Some(&new), Some(&split));
    assert_eq!(r.rules.len(), 1);
    assert_eq!(r.rules[0].serve.mark, Mark::Changed);
    assert_eq!(
        r.changes,
        vec!["rule 1: serve on → rollout off 50%, on 50%"]
    );
    let added: Vec<Mark> = r.rules[0].serve.weights.iter().map(|w| w.mark).collect();
    assert_eq!(added, [Mark::Added, Mark::Added]);
}

#[test]
fn added_and_removed_flags_carry_the_whole_definition() {
    let flag = checkout_flag();
    let added = review_flag("new-checkout", None, Some(&flag));
    assert_eq!(added.mark, Mark::Added);
    assert!(added.rules.iter().all(|r| r.mark == Mark::Added));
    assert!(added.variants.iter().all(|v| v.mark == Mark::Added));
    assert_eq!(added.old_flag(), None);
    assert_eq!(added.new_flag(), Some(flag.clone()));
    assert_eq!(added.changes[0], "flag added");
    assert!(
        added.changes.contains(&"enabled true".to_owned()),
        "{:?}",
        added.changes
    );
    let removed = review_flag("new-checkout", Some(&flag), None);
    assert_eq!(removed.mark, Mark::Removed);
    assert_eq!(removed.changes, vec!["flag removed"]);
    assert_eq!(removed.old_flag(), Some(flag));
    assert_eq!(removed.new_flag(), None);
}

#[test]
fn the_json_form_round_trips_and_the_hash_sees_every_mark() {
    let old = checkout_flag();
    let mut new = old.clone();
    new.rules[1].serve = rollout(&[("on", 50), ("off", 50)]);
    let reviews = vec![review_flag("new-checkout", Some(&old), Some(&new))];
    let text = serde_json::to_string(&reviews).expect("encodes");
    let back: Vec<FlagReview> = serde_json::from_str(&text).expect("decodes");
    assert_eq!(back, reviews);
    let v = serde_json::to_value(&reviews).expect("value");
    assert_eq!(v[0]["flag"], "new-checkout");
    assert_eq!(
        v[0]["rules"][1]["serve"]["old"],
        json!({"rollout": {"on": 10, "off": 90}})
    );
    assert_eq!(v[0]["rules"][1]["serve"]["weights"][1]["new"], 50);
    let hash = review_hash(&reviews);
    assert_eq!(hash.len(), 64);
    assert_eq!(review_hash(&back), hash);
    let mut other = new.clone();
    other.rules[1].serve = rollout(&[("on", 51), ("off", 49)]);
    assert_ne!(
        review_hash(&[review_flag("new-checkout", Some(&old), Some(&other))]),
        hash
    );
}

// ------------------------------------------------------------------------- proptest

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        (0i64..4).prop_map(Value::from),
        prop::sample::select(vec!["pro", "team", "@raxx.app"]).prop_map(Value::from),
    ]
}

fn any_condition() -> impl Strategy<Value = Condition> {
    (
        prop::sample::select(vec!["email", "plan", "country"]),
        prop::sample::select(vec![Op::Eq, Op::In, Op::EndsWith]),
        any_value(),
    )
        .prop_map(|(attr, op, value)| cond(attr, op, value))
}

fn any_serve() -> impl Strategy<Value = Serve> {
    prop_oneof![
        prop::sample::select(vec!["on", "off", "beta"]).prop_map(|v| Serve::Variant(v.into())),
        (0u32..=100).prop_map(|p| rollout(&[("on", p), ("off", 100 - p)])),
        (0u32..=50).prop_map(|p| rollout(&[("beta", p), ("on", 100 - p)])),
    ]
}

fn any_rule() -> impl Strategy<Value = Rule> {
    (prop::collection::vec(any_condition(), 0..4), any_serve())
        .prop_map(|(when, serve)| Rule { when, serve })
}

fn any_flag() -> impl Strategy<Value = Flag> {
    (
        prop::collection::btree_map(
            prop::sample::select(vec!["on", "off", "beta"]).prop_map(String::from),
            any_value(),
            0..4,
        ),
        prop::sample::select(vec!["on", "off"]),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec!["a", "b"]).prop_map(String::from)),
        prop::collection::vec(any_rule(), 0..5),
        prop::sample::select(vec![FlagType::Boolean, FlagType::String]),
    )
        .prop_map(
            |(variants, default, enabled, description, rules, flag_type)| Flag {
                key: "f".into(),
                flag_type,
                variants,
                default_variant: default.into(),
                enabled,
                description,
                rules,
            },
        )
}

/// A flag that shares some rules with `base` (so alignments have anchors to find).
fn related_pair() -> impl Strategy<Value = (Flag, Flag)> {
    (
        any_flag(),
        any_flag(),
        prop::collection::vec(any::<bool>(), 0..5),
    )
        .prop_map(|(a, mut b, keep)| {
            for (i, k) in keep.into_iter().enumerate() {
                if k && let Some(rule) = a.rules.get(i) {
                    let at = i.min(b.rules.len());
                    b.rules.insert(at, rule.clone());
                }
            }
            (a, b)
        })
}

fn marks_are_honest(r: &FlagReview) -> Result<(), TestCaseError> {
    for v in &r.variants {
        prop_assert_eq!(v.mark, Mark::of(v.old.as_ref(), v.new.as_ref()));
    }
    for rule in &r.rules {
        let same =
            rule.conditions.iter().all(|c| c.mark == Mark::Same) && rule.serve.mark == Mark::Same;
        prop_assert_eq!(
            rule.mark == Mark::Same,
            same && rule.old_position.is_some() && rule.new_position.is_some()
        );
        for c in &rule.conditions {
            prop_assert_eq!(c.mark, Mark::of(c.old.as_ref(), c.new.as_ref()));
            prop_assert_eq!(c.mark == Mark::Changed, !c.parts.is_empty());
        }
        for w in &rule.serve.weights {
            prop_assert_eq!(w.mark, Mark::of(w.old.as_ref(), w.new.as_ref()));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Lossless: each side of the diff is exactly that side's definition.
    #[test]
    fn both_sides_rebuild_exactly((old, new) in related_pair()) {
        let r = review_flag("f", Some(&old), Some(&new));
        prop_assert_eq!(r.old_flag(), Some(old.clone()));
        prop_assert_eq!(r.new_flag(), Some(new.clone()));
        prop_assert_eq!(r.mark == Mark::Same, old == new);
        prop_assert_eq!(r.changes.is_empty(), old == new);
        marks_are_honest(&r)?;
    }

    /// A flag against itself: everything same, every rule paired with itself in place.
    #[test]
    fn a_flag_against_itself_is_all_same(flag in any_flag()) {
        let r = review_flag("f", Some(&flag), Some(&flag));
        prop_assert_eq!(r.mark, Mark::Same);
        prop_assert!(r.changes.is_empty());
        prop_assert_eq!(r.rules.len(), flag.rules.len());
        for (i, rule) in r.rules.iter().enumerate() {
            prop_assert_eq!(rule.mark, Mark::Same);
            prop_assert_eq!((rule.old_position, rule.new_position), (Some(i + 1), Some(i + 1)));
        }
    }

    /// Every rule of each side appears once, in order; equal rules kept in place pair up.
    #[test]
    fn every_rule_appears_once_in_order((old, new) in related_pair()) {
        let r = review_flag("f", Some(&old), Some(&new));
        let olds: Vec<usize> = r.rules.iter().filter_map(|x| x.old_position).collect();
        let news: Vec<usize> = r.rules.iter().filter_map(|x| x.new_position).collect();
        prop_assert_eq!(olds, (1..=old.rules.len()).collect::<Vec<_>>());
        prop_assert_eq!(news, (1..=new.rules.len()).collect::<Vec<_>>());
        // Appending a rule changes nothing but that one addition.
        let mut longer = old.clone();
        longer.rules.push(Rule { when: vec![cond("zzz", Op::Eq, json!(1))], serve: Serve::Variant("on".into()) });
        let r = review_flag("f", Some(&old), Some(&longer));
        let changed: Vec<Mark> = r.rules.iter().map(|x| x.mark).filter(|m| *m != Mark::Same).collect();
        prop_assert_eq!(changed, vec![Mark::Added]);
        prop_assert_eq!(r.changes.len(), 1);
    }

    /// Absent sides: an added flag is all added, a removed one all removed; both lossless.
    #[test]
    fn absent_sides(flag in any_flag()) {
        let added = review_flag("f", None, Some(&flag));
        prop_assert_eq!(added.new_flag(), Some(flag.clone()));
        prop_assert!(added.rules.iter().all(|r| r.mark == Mark::Added));
        let removed = review_flag("f", Some(&flag), None);
        prop_assert_eq!(removed.old_flag(), Some(flag.clone()));
        prop_assert!(removed.rules.iter().all(|r| r.mark == Mark::Removed));
        prop_assert_eq!(review_flag("f", None, None).mark, Mark::Same);
    }

    /// One rollout percentage moved reads as exactly that percentage.
    #[test]
    fn one_moved_percentage_is_one_change(flag in any_flag(), p in 0u32..=100, q in 0u32..=100) {
        prop_assume!(p != q);
        let mut old = flag.clone();
        old.rules.push(Rule { when: vec![], serve: rollout(&[("on", p), ("off", 100 - p)]) });
        let mut new = old.clone();
        let last = new.rules.len() - 1;
        new.rules[last].serve = rollout(&[("on", q), ("off", 100 - q)]);
        let r = review_flag("f", Some(&old), Some(&new));
        let changed: Vec<&RuleDiff> = r.rules.iter().filter(|x| x.mark != Mark::Same).collect();
        prop_assert_eq!(changed.len(), 1);
        let on = changed[0].serve.weights.iter().find(|w| w.variant == "on");
        prop_assert_eq!(on.map(|w| (w.old, w.new)), Some((Some(p), Some(q))));
        let expected = format!("rule {}: rollout off {}% → {}%, on {p}% → {q}%", last + 1, 100 - p, 100 - q);
        prop_assert_eq!(r.changes, vec![expected]);
    }
}
