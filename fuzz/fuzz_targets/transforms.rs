//! Every transform of `decode` over arbitrary bytes. The first byte picks a
//! chain of up to four transforms, the rest is the value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::decode::{apply, normalize, percent_decode, to_text, Plus, Transform};

/// Largest output of one transform for an input of `length` bytes. Every
/// transform here shrinks or keeps its input except a few that add a
/// character or widen one, so a larger output means runaway growth.
fn max_output(length: usize) -> usize {
    3 * length + 8
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, value)) = data.split_first() else {
        return;
    };

    for transform in Transform::ALL {
        let output = apply(&[transform], value);
        assert!(
            output.len() <= max_output(value.len()),
            "{transform:?} turned {} bytes into {}",
            value.len(),
            output.len()
        );
    }

    // Chains of one to four transforms; the selector's bits name them.
    let length = usize::from(selector >> 6) + 1;
    let chain: Vec<Transform> = (0..length)
        .map(|position| {
            let index = usize::from(selector.rotate_left(3 * position as u32)) % Transform::ALL.len();
            Transform::ALL[index]
        })
        .collect();
    let _ = to_text(&apply(&chain, value));

    for plus in [Plus::Space, Plus::Literal] {
        let _ = normalize(value, plus);
        assert!(percent_decode(value, plus).len() <= value.len());
    }
});
