use super::*;

fn run(transform: Transform, input: &[u8]) -> Vec<u8> {
    apply(&[transform], input)
}

#[test]
fn decode_plain_escape() {
    assert_eq!(percent_decode(b"a%20b", Plus::Literal), b"a b");
}

#[test]
fn decode_mixed_case_hex() {
    assert_eq!(percent_decode(b"%2e%2E%2f", Plus::Literal), b"../");
}

#[test]
fn decode_keeps_malformed_escapes() {
    assert_eq!(percent_decode(b"100%", Plus::Literal), b"100%");
    assert_eq!(percent_decode(b"%zz%4", Plus::Literal), b"%zz%4");
    assert_eq!(percent_decode(b"%%41", Plus::Literal), b"%A");
}

#[test]
fn decode_plus_by_mode() {
    assert_eq!(percent_decode(b"a+b", Plus::Space), b"a b");
    assert_eq!(percent_decode(b"a+b", Plus::Literal), b"a+b");
}

#[test]
fn decode_percent_u() {
    assert_eq!(percent_decode(b"%u003cscript", Plus::Literal), b"<script");
    assert_eq!(percent_decode(b"%u00e9", Plus::Literal), "é".as_bytes());
}

#[test]
fn url_decode_repeats_until_stable() {
    assert_eq!(run(Transform::UrlDecode, b"%252e%252e%252f"), b"../");
}

#[test]
fn url_decode_stops_after_max_rounds() {
    // Four layers of encoding: three rounds leave one layer.
    assert_eq!(run(Transform::UrlDecode, b"%2525252e"), b"%2e");
}

#[test]
fn overlong_utf8_is_folded() {
    assert_eq!(run(Transform::Utf8Fold, b"..\xc0\xaf.."), b"../..");
    assert_eq!(run(Transform::Utf8Fold, b"\xe0\x80\xae"), b".");
    let chain = [Transform::UrlDecode, Transform::Utf8Fold];
    assert_eq!(apply(&chain, b"%c0%ae%c0%ae%c0%af"), b"../");
}

#[test]
fn fullwidth_is_folded() {
    assert_eq!(
        run(Transform::Utf8Fold, "＜script＞".as_bytes()),
        b"<script>"
    );
}

#[test]
fn invalid_utf8_is_kept() {
    assert_eq!(run(Transform::Utf8Fold, b"\xff\xfeA"), b"\xff\xfeA");
    assert_eq!(run(Transform::Lowercase, b"\xffAB"), b"\xffab");
    assert_eq!(to_text(b"\xffa"), "\u{fffd}a");
}

#[test]
fn html_entities_decode() {
    assert_eq!(run(Transform::HtmlEntities, b"&lt;svg&gt;"), b"<svg>");
    assert_eq!(
        run(Transform::HtmlEntities, b"&#60;&#x3C;&#0000060"),
        b"<<<"
    );
    assert_eq!(run(Transform::HtmlEntities, b"$&lbrace;jndi"), b"${jndi");
    assert_eq!(
        run(Transform::HtmlEntities, b"Tom & Jerry &unknown;"),
        b"Tom & Jerry &unknown;"
    );
}

#[test]
fn js_escapes_decode() {
    assert_eq!(run(Transform::JsEscapes, br"\x3cscript\u003e"), b"<script>");
    assert_eq!(run(Transform::JsEscapes, br"\u{6a}ndi"), b"jndi");
    assert_eq!(run(Transform::JsEscapes, br"a\nb"), br"a\nb");
}

#[test]
fn css_escapes_decode() {
    assert_eq!(run(Transform::CssEscapes, br"\6a avascript"), b"javascript");
    assert_eq!(run(Transform::CssEscapes, br"exp\ression"), b"expression");
}

#[test]
fn lowercase_unicode() {
    assert_eq!(
        run(Transform::Lowercase, "UNION SeLeCt Ä".as_bytes()),
        "union select ä".as_bytes()
    );
}

#[test]
fn nul_removed() {
    assert_eq!(run(Transform::RemoveNul, b"<scr\0ipt>"), b"<script>");
}

#[test]
fn path_normalized() {
    assert_eq!(run(Transform::NormalizePath, b"/a/./b//c/../d"), b"/a/b/d");
    assert_eq!(
        run(Transform::NormalizePath, br"\a\b;jsessionid=1\c"),
        b"/a/b/c"
    );
    assert_eq!(run(Transform::NormalizePath, b"a/../../etc"), b"../etc");
    assert_eq!(run(Transform::NormalizePath, b"/x/"), b"/x/");
}

#[test]
fn whitespace_compressed() {
    assert_eq!(run(Transform::CompressWhitespace, b"a \t\r\n b"), b"a b");
}

#[test]
fn comments_removed() {
    assert_eq!(
        run(Transform::RemoveComments, b"un/**/ion sel/*x*/ect"),
        b"union select"
    );
    assert_eq!(
        run(Transform::RemoveComments, b"/*!50000union*/ select"),
        b"union select"
    );
    assert_eq!(run(Transform::RemoveComments, b"a /* open"), b"a ");
}

#[test]
fn shell_escapes_removed() {
    assert_eq!(
        run(Transform::ShellUnescape, br"c'a't /e\tc/pa''sswd"),
        b"cat /etc/passwd"
    );
    assert_eq!(
        run(Transform::ShellUnescape, b"cat$IFS/etc/passwd"),
        b"cat /etc/passwd"
    );
    assert_eq!(
        run(Transform::ShellUnescape, b"cat${IFS}x$IFS$9y"),
        b"cat x y"
    );
    assert_eq!(run(Transform::ShellUnescape, b"w^h^o^a^m^i"), b"whoami");
    assert_eq!(run(Transform::ShellUnescape, b"wh$@oami"), b"whoami");
}

#[test]
fn base64_decoded_when_whole() {
    assert_eq!(run(Transform::Base64Decode, b"PHNjcmlwdD4="), b"<script>");
    assert_eq!(run(Transform::Base64Decode, b"hello world"), b"hello world");
    assert_eq!(run(Transform::Base64Decode, b"abc"), b"abc");
    assert_eq!(
        run(Transform::Base64DecodeOrEmpty, b"PHNjcmlwdD4="),
        b"<script>"
    );
    assert_eq!(run(Transform::Base64DecodeOrEmpty, b"hello world"), b"");
    assert_eq!(run(Transform::Base64DecodeOrEmpty, b"java runtime"), b"");
}

#[test]
fn normalize_default_chain() {
    assert_eq!(normalize(b"UNION+SeLeCt", Plus::Space), "union select");
    assert_eq!(normalize(b"%252e%252e%252f", Plus::Literal), "../");
    assert_eq!(normalize(b"", Plus::Space), "");
}

/// Returns every value of one or two bytes, and longer values built from
/// the bytes that some transform acts on.
fn skip_samples() -> Vec<Vec<u8>> {
    let mut samples: Vec<Vec<u8>> = (0..=255u8).map(|byte| vec![byte]).collect();
    for first in 0..=255u8 {
        for second in 0..=255u8 {
            samples.push(vec![first, second]);
        }
    }
    let pieces: [&[u8]; 19] = [
        b"aGVsbG8gd29y",
        b";v=1",
        b".",
        b"a",
        b"B",
        b" ",
        b"  ",
        b"\t",
        b"%41",
        b"&lt;",
        b"\\x41",
        b"\\41 ",
        b"/*c*/",
        b"c'a't",
        b"$IFS",
        b"\0",
        "\u{ff21}".as_bytes(),
        b"\xc0\xaf",
        b"/../",
    ];
    for a in pieces {
        for b in pieces {
            for c in pieces {
                samples.push([a, b, c].concat());
            }
        }
    }
    samples
}

#[test]
fn skipped_transforms_leave_the_value_unchanged() {
    for sample in skip_samples() {
        let present = Present::of(&sample);
        for transform in Transform::ALL {
            if !present.may_change(transform) {
                assert_eq!(
                    apply_one(transform, &sample),
                    sample,
                    "{transform:?} changes {sample:?} although its bytes say it cannot"
                );
            }
        }
    }
}

#[test]
fn skipped_chains_leave_values_unchanged() {
    let mut chains: Vec<Vec<Transform>> = Transform::ALL.iter().map(|&t| vec![t]).collect();
    chains.push(vec![
        Transform::UrlDecode,
        Transform::JsEscapes,
        Transform::Base64DecodeOrEmpty,
        Transform::RemoveNul,
        Transform::Lowercase,
    ]);
    chains.push(vec![
        Transform::UrlDecode,
        Transform::HtmlEntities,
        Transform::RemoveNul,
        Transform::Lowercase,
    ]);
    for sample in skip_samples() {
        let present = Present::of(&sample);
        for chain in &chains {
            if !present.has_any(Present::acted_on_by(chain)) {
                assert_eq!(
                    apply_if_changed(chain, &sample),
                    None,
                    "{chain:?} changes {sample:?} although its bytes say it cannot"
                );
            }
        }
    }
}

#[test]
fn chains_with_skips_equal_chains_without() {
    let chain = [
        Transform::UrlDecode,
        Transform::Utf8Fold,
        Transform::HtmlEntities,
        Transform::JsEscapes,
        Transform::RemoveNul,
        Transform::Lowercase,
        Transform::ShellUnescape,
        Transform::CompressWhitespace,
        Transform::NormalizePath,
        Transform::Base64Decode,
    ];
    for sample in skip_samples() {
        let mut expected = sample.clone();
        for transform in chain {
            expected = apply_one(transform, &expected);
        }
        assert_eq!(apply(&chain, &sample), expected, "{sample:?}");
    }
}

/// Fragments whose repetition makes the long runs that some transform looks
/// ahead over.
const RUN_SHAPES: [&[u8]; 9] = [
    b"`",
    b"```a",
    b"$'",
    b"%",
    b"&#",
    b"/*",
    b"\\",
    b"\xe2\x91",
    b"../",
];

/// Linear time gives a ratio near 8 between 256 KiB and 32 KiB, quadratic
/// time one near 64. The bound of 24 leaves a factor of about three on each
/// side, so that a busy machine does not fail linear code.
#[test]
fn transforms_take_linear_time_on_long_runs() {
    let value = |unit: &[u8], size: usize| -> Vec<u8> {
        std::iter::once(b'a')
            .chain(unit.iter().copied().cycle().take(size))
            .collect()
    };
    let once = |transform: Transform, value: &[u8]| {
        let started = std::time::Instant::now();
        std::hint::black_box(apply_one(transform, value));
        started.elapsed()
    };
    for transform in Transform::ALL {
        for unit in RUN_SHAPES {
            let (small_value, large_value) = (value(unit, 32 * 1024), value(unit, 256 * 1024));
            // The two sizes take turns, and the minimum of five runs of each
            // drops the runs that other tests on the same cores slowed. When
            // the cores stay busy, runs longer than a scheduler time slice
            // are stretched and shorter ones are not, so a ratio over the
            // bound is measured again, up to three times. Quadratic time
            // stays over it every time.
            let mut measured = Vec::new();
            for _ in 0..3 {
                let (mut small, mut large) = (std::time::Duration::MAX, std::time::Duration::MAX);
                for _ in 0..5 {
                    small = small.min(once(transform, &small_value));
                    large = large.min(once(transform, &large_value));
                }
                let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-6);
                measured.push((large, small));
                if ratio < 24.0 || large < std::time::Duration::from_millis(5) {
                    break;
                }
            }
            assert!(
                measured.len() < 3 || {
                    let (large, small) = measured[2];
                    large.as_secs_f64() / small.as_secs_f64().max(1e-6) < 24.0
                        || large < std::time::Duration::from_millis(5)
                },
                "{transform:?} on runs of {unit:?}: 256 KiB and 32 KiB took {measured:?}"
            );
        }
    }
}

#[test]
fn empty_process_substitution_alone_is_removed() {
    assert_eq!(apply(&[Transform::ShellUnescape], b"w<()get"), b"wget");
    assert_eq!(apply(&[Transform::ShellUnescape], b"c>()at"), b"cat");
}

#[test]
fn all_lists_every_transform_once() {
    // The match fails to compile when a transform is added, and the
    // positions make each variant appear exactly once.
    let position = |transform: Transform| match transform {
        Transform::UrlDecode => 0,
        Transform::Utf8Fold => 1,
        Transform::HtmlEntities => 2,
        Transform::JsEscapes => 3,
        Transform::CssEscapes => 4,
        Transform::Lowercase => 5,
        Transform::RemoveNul => 6,
        Transform::NormalizePath => 7,
        Transform::CompressWhitespace => 8,
        Transform::RemoveComments => 9,
        Transform::ShellUnescape => 10,
        Transform::Base64Decode => 11,
        Transform::Base64DecodeOrEmpty => 12,
    };
    for (index, transform) in Transform::ALL.into_iter().enumerate() {
        assert_eq!(position(transform), index, "{transform:?}");
    }
}
