//! Request filtering with anomaly scoring: every rule runs over every request
//! value separately, each matching rule adds its severity's points once, and
//! the request is blocked (or flagged in monitor mode) when its score reaches
//! the threshold.

use crate::decode::{apply_if_changed, to_text, Present, Transform};
use crate::error::Error;
use crate::http::{first_value, split_path, truncate_chars, HeaderPairs, LocalResponse};
use crate::protocol::{check_body, check_headers, check_url_hosts, Hit, Limits};
use crate::rules::{
    compile_custom, compile_spec, CustomRuleSection, Rule, RuleInfo, TargetKind, Uncompiled,
    STRUCTURED_HEADERS,
};
use crate::ruleset::RULES;
use crate::targets::{
    body_format, body_targets, header_targets, multipart_boundary, parse_multipart, BodyFormat,
    Target,
};
use memo::CleanValues;
use prefilter::Prefilter;
use selection::{for_each_rule, intersects, Selection};
use serde::Deserialize;
use std::cell::RefCell;

pub use crate::targets::{is_sensitive_name, MAX_TARGET_NAME_CHARS};

/// Maximum number of characters of a match that an event reports.
pub const MAX_EXCERPT_CHARS: usize = 40;

/// Upper bound for `filter.max_body_bytes`, because the body is buffered in
/// the plugin's memory for inspection.
pub const MAX_BODY_BYTES_LIMIT: usize = 16 * 1024 * 1024;

/// Maximum number of bytes of one value that rules inspect; the rest of a
/// longer value is not inspected.
pub const MAX_INSPECTED_VALUE_BYTES: usize = 1024 * 1024;

/// Excerpt reported for values that may hold credentials.
pub const REDACTED: &str = "[redacted]";

/// The filter's response to a request whose score reaches the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum FilterMode {
    /// Send the block response.
    Block,
    /// Log the match and let the request through.
    Monitor,
}

/// The filter's response to a body larger than `max_body_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum BodyTooLarge {
    /// Send `413` with `{"error":"body_too_large"}`.
    Reject,
    /// Let the body through uninspected.
    Pass,
}

/// One entry of `filter.exclusions`: the listed rules do not run on the
/// listed targets of requests to the listed paths. An empty list matches
/// everything, and a trailing `*` in an entry matches a prefix.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ExclusionSection {
    /// Rule ids, such as `sqli-union-select` or `sqli-*`. Default empty:
    /// every rule.
    rules: Vec<String>,
    /// Target labels, as events report them, such as `query.q`,
    /// `header.referer`, `cookie.*` or `json.user.name`. Default empty:
    /// every target.
    targets: Vec<String>,
    /// Request paths, such as `/api/search` or `/admin/*`. Default empty:
    /// every path.
    paths: Vec<String>,
}

/// The `filter` section of the configuration, as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FilterSection {
    /// Whether request filtering is on. Default true.
    enabled: bool,
    /// `block` (default) sends `block_status` in response to a request
    /// whose anomaly score reaches `anomaly_threshold`, and `monitor` logs
    /// the match and lets the request through.
    mode: FilterMode,
    /// Largest request body, in bytes, that is buffered and inspected, at
    /// most 16777216 (16 MiB). Default 65536.
    #[cfg_attr(feature = "schema", schemars(range(max = 16777216)))]
    max_body_bytes: u64,
    /// Handling of a larger body: `reject` (default) sends 413 with
    /// `{"error":"body_too_large"}`, and `pass` forwards it uninspected.
    on_body_too_large: BodyTooLarge,
    /// Status of the block response, 400 to 599. Default 403.
    #[cfg_attr(feature = "schema", schemars(range(min = 400, max = 599)))]
    block_status: u16,
    /// Paranoia level, 1 to 4: rules and checks of a higher level do not
    /// run. Higher levels catch more attacks and block more legitimate
    /// requests. Default 1.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 4)))]
    paranoia_level: u8,
    /// Anomaly score at which a request is blocked or flagged, at least 1.
    /// Each matching rule adds its severity's points once: low 2, medium 3,
    /// high 4, critical 5. Default 5.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    anomaly_threshold: u32,
    /// Rule exclusions: each keeps the listed rules off the listed targets
    /// of requests to the listed paths. An empty list matches everything,
    /// and a trailing `*` in an entry matches a prefix. Default empty.
    #[serde(deserialize_with = "crate::config::objects")]
    exclusions: Vec<ExclusionSection>,
    /// Custom rules, run beside the built-in rule set. Default empty.
    #[serde(deserialize_with = "crate::config::objects")]
    rules: Vec<CustomRuleSection>,
    /// Protocol limits and checks: methods, sizes, counts, content types
    /// and charsets.
    #[serde(deserialize_with = "crate::config::object")]
    limits: Limits,
    /// Whether the filter remembers request metadata on which no rule
    /// matched, and skips the rules when the same value comes again. The
    /// metadata is the method, the path, header names and values, cookie
    /// names and argument names, up to 1024 values of at most 256 bytes each.
    /// Argument and cookie values, query strings, bodies and values under
    /// names that may carry credentials are never remembered. Default true.
    remember_clean_metadata: bool,
}

impl Default for FilterSection {
    fn default() -> Self {
        FilterSection {
            enabled: true,
            mode: FilterMode::Block,
            max_body_bytes: 64 * 1024,
            on_body_too_large: BodyTooLarge::Reject,
            block_status: 403,
            paranoia_level: 1,
            anomaly_threshold: 5,
            exclusions: Vec::new(),
            rules: Vec::new(),
            limits: Limits::default(),
            remember_clean_metadata: true,
        }
    }
}

/// A value that a rule matched, with what the logs may show of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The rule that matched.
    pub rule: RuleInfo,
    /// Label of the inspected value, such as `path`, `query.q`, `header.referer`,
    /// `cookie.theme`, `form.comment` or `json.user.name`.
    pub target: String,
    /// Up to [`MAX_EXCERPT_CHARS`] characters of the transformed match, with
    /// control characters replaced by `?`, or [`REDACTED`] for values that
    /// may hold credentials.
    pub excerpt: String,
}

/// The rule matches of one request so far and their anomaly score.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assessment {
    /// The first match of each rule, in the order found.
    pub detections: Vec<Detection>,
    /// Sum of the anomaly points of the matched rules.
    pub score: u32,
    /// Number of detections already reported in an event.
    pub reported: usize,
}

impl Assessment {
    fn add(&mut self, detection: Detection) {
        if self
            .detections
            .iter()
            .any(|seen| seen.rule.id == detection.rule.id)
        {
            return;
        }
        self.score += detection.rule.severity.anomaly_points();
        self.detections.push(detection);
    }

    /// Returns the match of the most severe rule, the first one among equals.
    pub fn primary(&self) -> Option<&Detection> {
        self.detections
            .iter()
            .rev()
            .max_by_key(|detection| detection.rule.severity)
    }

    /// Returns the ids of every matched rule, in the order found.
    pub fn rule_ids(&self) -> Vec<&'static str> {
        self.detections
            .iter()
            .map(|detection| detection.rule.id)
            .collect()
    }
}

/// The action that follows an assessment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send this response and stop the request.
    Block(LocalResponse),
    /// Log the detections and continue.
    Flag,
}

/// A compiled exclusion.
#[derive(Debug, Clone)]
struct Exclusion {
    rules: Vec<String>,
    targets: Vec<String>,
    paths: Vec<String>,
}

fn glob_matches(patterns: &[String], value: &str) -> bool {
    patterns.is_empty()
        || patterns
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => value.starts_with(prefix),
                None => pattern == value,
            })
}

impl Exclusion {
    fn covers(&self, rule: &str, target: &str, path: &str) -> bool {
        glob_matches(&self.rules, rule)
            && glob_matches(&self.targets, target)
            && glob_matches(&self.paths, path)
    }
}

/// The compiled request filter.
#[derive(Debug, Clone)]
pub struct Filter {
    enabled: bool,
    mode: FilterMode,
    max_body_bytes: usize,
    on_body_too_large: BodyTooLarge,
    block_status: u16,
    paranoia_level: u8,
    anomaly_threshold: u32,
    rules: Vec<Rule>,
    chains: Vec<Vec<Transform>>,
    /// For each chain, the longest other chain that is a prefix of it, whose
    /// output the chain continues from instead of starting over.
    parents: Vec<Option<usize>>,
    /// For each chain, the kinds of bytes that its transforms act on. A
    /// value with none of them is its own output, found without running
    /// the chain.
    acted_on: Vec<Present>,
    /// The literals of all rules in one automaton, so that each distinct
    /// transformed value is scanned once instead of once per rule.
    prefilter: Prefilter,
    /// The rules by target kind, chain and gate, as bit masks.
    selection: Selection,
    exclusions: Vec<Exclusion>,
    limits: Limits,
    /// Request metadata values on which no rule matched, unless
    /// `remember_clean_metadata` is off.
    clean: Option<CleanValues>,
}

impl Filter {
    pub(crate) fn compile(section: &FilterSection) -> Result<Self, Error> {
        if !(400..=599).contains(&section.block_status) {
            return Err(Error::invalid(
                "filter.block_status",
                format!(
                    "must be an HTTP error status between 400 and 599, got {}",
                    section.block_status
                ),
            ));
        }
        let max_body_bytes = usize::try_from(section.max_body_bytes)
            .ok()
            .filter(|&bytes| bytes <= MAX_BODY_BYTES_LIMIT)
            .ok_or_else(|| {
                Error::invalid(
                    "filter.max_body_bytes",
                    format!(
                        "must be at most {MAX_BODY_BYTES_LIMIT} bytes, got {}",
                        section.max_body_bytes
                    ),
                )
            })?;
        if !(1..=4).contains(&section.paranoia_level) {
            return Err(Error::invalid(
                "filter.paranoia_level",
                format!("must be 1 to 4, got {}", section.paranoia_level),
            ));
        }
        if section.anomaly_threshold == 0 {
            return Err(Error::invalid(
                "filter.anomaly_threshold",
                "must be at least 1",
            ));
        }
        let mut uncompiled: Vec<Uncompiled> =
            RULES.iter().map(compile_spec).collect::<Result<_, _>>()?;
        for (index, custom) in section.rules.iter().enumerate() {
            uncompiled.push(compile_custom(custom, &format!("filter.rules[{index}]"))?);
        }
        let mut chains: Vec<Vec<Transform>> = Vec::new();
        let mut rules = Vec::with_capacity(uncompiled.len());
        for Uncompiled {
            mut rule,
            transforms,
        } in uncompiled
        {
            if rules.iter().any(|seen: &Rule| seen.info.id == rule.info.id) {
                return Err(Error::invalid(
                    "filter.rules",
                    format!("rule id {} is used twice", rule.info.id),
                ));
            }
            rule.chain = match chains.iter().position(|chain| *chain == transforms) {
                Some(index) => index,
                None => {
                    chains.push(transforms);
                    chains.len() - 1
                }
            };
            rules.push(rule);
        }
        let parents = chain_parents(&chains);
        let acted_on = chains
            .iter()
            .map(|chain| Present::acted_on_by(chain))
            .collect();
        let prefilter = Prefilter::build(&rules)?;
        let selection = Selection::build(&rules, chains.len(), section.paranoia_level, &prefilter);
        let exclusions = section
            .exclusions
            .iter()
            .map(|exclusion| Exclusion {
                rules: exclusion.rules.clone(),
                targets: exclusion.targets.clone(),
                paths: exclusion.paths.clone(),
            })
            .collect();
        Ok(Filter {
            enabled: section.enabled,
            mode: section.mode,
            max_body_bytes,
            on_body_too_large: section.on_body_too_large,
            block_status: section.block_status,
            paranoia_level: section.paranoia_level,
            anomaly_threshold: section.anomaly_threshold,
            rules,
            chains,
            parents,
            acted_on,
            prefilter,
            selection,
            exclusions,
            limits: section.limits.clone(),
            clean: section.remember_clean_metadata.then(CleanValues::default),
        })
    }

    /// Tells whether request filtering is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Returns the configured mode.
    pub fn mode(&self) -> FilterMode {
        self.mode
    }

    /// Returns the largest body, in bytes, that is buffered and inspected.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Returns what happens to a body larger than [`Filter::max_body_bytes`].
    pub fn on_body_too_large(&self) -> BodyTooLarge {
        self.on_body_too_large
    }

    /// Returns the paranoia level, 1 to 4.
    pub fn paranoia_level(&self) -> u8 {
        self.paranoia_level
    }

    /// Returns the score at which a request is blocked or flagged.
    pub fn anomaly_threshold(&self) -> u32 {
        self.anomaly_threshold
    }

    /// Returns the compiled rules, in the order they run, including those
    /// above the paranoia level.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Inspects method, path, query string, every query argument, header and
    /// cookie, and runs the header-phase protocol checks.
    pub fn inspect_headers(&self, headers: &HeaderPairs) -> Assessment {
        let mut assessment = Assessment::default();
        let path = request_path(headers);
        let targets = header_targets(headers);
        for hit in check_headers(&self.limits, headers, &targets) {
            self.add_hit(&mut assessment, hit, &path);
        }
        for hit in check_url_hosts(headers, &targets) {
            self.add_hit(&mut assessment, hit, &path);
        }
        self.run_rules(&mut assessment, &targets, &path);
        assessment
    }

    /// Inspects a complete request body, parsed by `content_type`, and adds
    /// its matches to the assessment of the headers.
    pub fn inspect_body(&self, assessment: &mut Assessment, headers: &HeaderPairs, body: &[u8]) {
        let path = request_path(headers);
        let content_type = first_value(headers, "content-type");
        let parts = match body_format(content_type) {
            BodyFormat::Multipart => content_type
                .and_then(multipart_boundary)
                .and_then(|boundary| parse_multipart(body, &boundary)),
            _ => None,
        };
        let targets = body_targets(body, content_type, parts.as_deref().unwrap_or_default());
        for hit in check_body(&self.limits, body, content_type, parts.as_deref(), &targets) {
            self.add_hit(assessment, hit, &path);
        }
        for hit in check_url_hosts(headers, &targets) {
            self.add_hit(assessment, hit, &path);
        }
        self.run_rules(assessment, &targets, &path);
    }

    /// Turns an assessment into a verdict, or `None` while its score is
    /// below the threshold.
    pub fn verdict(&self, assessment: &Assessment) -> Option<Verdict> {
        if assessment.score < self.anomaly_threshold {
            return None;
        }
        let rule = assessment.primary().map(|detection| detection.rule.id);
        Some(match self.mode {
            FilterMode::Block => Verdict::Block(LocalResponse::json(
                u32::from(self.block_status),
                &serde_json::json!({"error": "request_blocked", "rule": rule}),
            )),
            FilterMode::Monitor => Verdict::Flag,
        })
    }

    /// Builds the response sent under `on_body_too_large: reject`.
    pub fn body_too_large_response(&self) -> LocalResponse {
        LocalResponse::json(413, &serde_json::json!({"error": "body_too_large"}))
    }

    fn excluded(&self, rule: &str, target: &str, path: &str) -> bool {
        self.exclusions
            .iter()
            .any(|exclusion| exclusion.covers(rule, target, path))
    }

    fn add_hit(&self, assessment: &mut Assessment, hit: Hit, path: &str) {
        if hit.paranoia > self.paranoia_level || self.excluded(hit.rule.id, &hit.target, path) {
            return;
        }
        assessment.add(Detection {
            rule: hit.rule,
            target: hit.target,
            excerpt: mask_control(&hit.excerpt),
        });
    }

    /// Runs every rule at or below the paranoia level over each target, with
    /// each transform chain computed at most once per target and each
    /// distinct transformed value scanned for literals once. A rule is
    /// visited only when its gate group occurs in its chain's output.
    ///
    /// The buffers of this work are kept per thread and reused by the next
    /// call, because allocation is a large share of the cost of a request
    /// in a WebAssembly VM.
    fn run_rules(&self, assessment: &mut Assessment, targets: &[Target], path: &str) {
        thread_local! {
            static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.run_rules_in(&mut scratch, assessment, targets, path),
            Err(_) => self.run_rules_in(&mut Scratch::default(), assessment, targets, path),
        });
    }

    fn run_rules_in(
        &self,
        scratch: &mut Scratch,
        assessment: &mut Assessment,
        targets: &[Target],
        path: &str,
    ) {
        let words = self.selection.words();
        let Scratch {
            values,
            applicable,
            candidates,
        } = scratch;
        values.prepare(self.chains.len(), self.prefilter.set_words());
        for mask in [&mut *applicable, &mut *candidates] {
            mask.clear();
            mask.resize(words, 0);
        }
        for target in targets {
            if target.value.is_empty() || is_opaque_credential(target) {
                continue;
            }
            let value = &target.value[..target.value.len().min(MAX_INSPECTED_VALUE_BYTES)];
            let memory = self
                .clean
                .as_ref()
                .and_then(|clean| Some((clean, CleanValues::key(target, value)?)));
            if memory.is_some_and(|(clean, key)| clean.contains(key, target, value)) {
                continue;
            }
            values.clear();
            let structured = target.kind == TargetKind::HeaderValue
                && STRUCTURED_HEADERS.contains(&target.name.as_str());
            let kind = target.kind.bit().trailing_zeros() as usize;
            applicable.copy_from_slice(self.selection.kind(kind));
            self.selection
                .keep_applicable(&target.name, structured, applicable);
            candidates.iter_mut().for_each(|word| *word = 0);
            for chain in 0..self.chains.len() {
                let chain_rules = self.selection.chain(chain);
                if !intersects(chain_rules, applicable) {
                    continue;
                }
                let slot = self.transform(values, chain, value);
                let passing = values.passing(&self.prefilter, &self.selection, slot);
                for ((candidate, passes), on_chain) in
                    candidates.iter_mut().zip(passing).zip(chain_rules)
                {
                    *candidate |= passes & on_chain;
                }
            }
            for (candidate, applies) in candidates.iter_mut().zip(&*applicable) {
                *candidate &= applies;
            }
            // The value is remembered only when every candidate rule ran to
            // its end and none matched. A rule skipped because it matched
            // an earlier target, or because an exclusion covers this one,
            // does not show that the value is clean.
            let mut clean = true;
            for_each_rule(candidates, |index| {
                let outcome = self.run_rule(assessment, values, index, target, value, path);
                clean &= outcome == RuleOutcome::NoMatch;
            });
            if let Some((memory, key)) = memory.filter(|_| clean) {
                memory.insert(key, target, value);
            }
        }
        // The request's values are not kept until the next request: large
        // ones are dropped and the rest emptied.
        values.clear();
    }

    /// Runs the rule at `index` on a target whose chains `run_rules` has
    /// computed, once the rest of its literal condition holds.
    fn run_rule(
        &self,
        assessment: &mut Assessment,
        values: &mut TargetValues,
        index: usize,
        target: &Target,
        value: &[u8],
        path: &str,
    ) -> RuleOutcome {
        let Some(rule) = self.rules.get(index) else {
            return RuleOutcome::NoMatch;
        };
        let slot = self.transform(values, rule.chain, value);
        if !self
            .prefilter
            .rest_holds(index, values.found(&self.prefilter, slot))
        {
            return RuleOutcome::NoMatch;
        }
        if assessment
            .detections
            .iter()
            .any(|seen| seen.rule.id == rule.info.id)
            || self.excluded(rule.info.id, &target.label, path)
        {
            return RuleOutcome::Skipped;
        }
        let Some(text) = values.text(slot) else {
            return RuleOutcome::NoMatch;
        };
        let Some(range) = rule.find_prefiltered(text) else {
            return RuleOutcome::NoMatch;
        };
        let excerpt = if target.is_sensitive() {
            REDACTED.to_string()
        } else {
            mask_excerpt(text.get(range).unwrap_or_default())
        };
        assessment.add(Detection {
            rule: rule.info,
            target: target.label.to_string(),
            excerpt,
        });
        RuleOutcome::Matched
    }

    /// Returns the slot in `values` of `value` after `chain`, computing it
    /// from the output of the chain's parent. A chain that leaves its input
    /// unchanged shares the input's slot, and an output equal to an earlier
    /// one shares that slot.
    fn transform(&self, values: &mut TargetValues, chain: usize, value: &[u8]) -> usize {
        if let Some(slot) = values.chain_slot[chain] {
            return slot;
        }
        let present = *values.present.get_or_insert_with(|| Present::of(value));
        if !present.has_any(self.acted_on[chain]) {
            let slot = values.raw_slot(value);
            values.chain_slot[chain] = Some(slot);
            return slot;
        }
        let steps = &self.chains[chain];
        let slot = match self.parents[chain] {
            Some(parent) => {
                let base = self.transform(values, parent, value);
                let done = self.chains[parent].len();
                let output = values
                    .texts
                    .get(base)
                    .and_then(|text| apply_if_changed(&steps[done..], text.bytes()));
                match output {
                    Some(bytes) => values.insert(bytes),
                    None => base,
                }
            }
            None => match apply_if_changed(steps, value) {
                Some(bytes) => values.insert(bytes),
                None => values.raw_slot(value),
            },
        };
        values.chain_slot[chain] = Some(slot);
        slot
    }
}

/// The transformed forms of one target value and the literal groups found in
/// each.
/// Result of [`Filter::run_rule`] for one rule on one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleOutcome {
    /// The rule ran and did not match.
    NoMatch,
    /// The rule matched and was added to the assessment.
    Matched,
    /// The rule was not run: it matched an earlier target of the request,
    /// or an exclusion covers this target.
    Skipped,
}

/// Upper bound on the emptied strings that [`TargetValues`] keeps for reuse.
const MAX_SPARES: usize = 32;

/// Upper bound on the capacity of an emptied string kept for reuse.
const MAX_SPARE_BYTES: usize = 4096;

/// The buffers of [`Filter::run_rules`], kept between calls.
#[derive(Default)]
struct Scratch {
    values: TargetValues,
    /// Rules that apply to the current target's kind and name.
    applicable: Vec<u64>,
    /// Rules whose literal gate passes on one of the target's chains.
    candidates: Vec<u64>,
}

#[derive(Default)]
struct TargetValues {
    /// Distinct transformed values.
    texts: Vec<Transformed>,
    /// Strings of earlier values, emptied, whose capacity new values reuse.
    spare: Vec<String>,
    /// Slot of the untransformed value, once a chain has left it unchanged.
    raw: Option<usize>,
    /// The kinds of bytes in the untransformed value, once a chain needs
    /// them.
    present: Option<Present>,
    /// For each chain, the slot of its output, once computed.
    chain_slot: Vec<Option<usize>>,
    /// Found-group sets of the slots, `words` `u64` words each.
    found: Vec<u64>,
    /// Whether each slot has been scanned.
    scanned: Vec<bool>,
    words: usize,
    /// For each slot, the rules whose gate its found groups pass, as a mask
    /// of the filter's [`Selection`].
    passing: Vec<u64>,
    /// Whether each slot's `passing` mask has been computed.
    selected: Vec<bool>,
}

impl TargetValues {
    /// Empties the values for a filter with `chains` transform chains and
    /// found-group sets of `words` words.
    fn prepare(&mut self, chains: usize, words: usize) {
        self.clear();
        self.chain_slot.clear();
        self.chain_slot.resize(chains, None);
        self.words = words;
    }

    fn clear(&mut self) {
        for text in self.texts.drain(..) {
            // Long values are rare, and their buffers are dropped so that
            // one large request does not hold memory for the VM's life.
            if text.invalid.is_none()
                && text.text.capacity() <= MAX_SPARE_BYTES
                && self.spare.len() < MAX_SPARES
            {
                let mut text = text.text;
                text.clear();
                self.spare.push(text);
            }
        }
        self.raw = None;
        self.present = None;
        self.chain_slot.iter_mut().for_each(|slot| *slot = None);
        self.scanned.clear();
        self.selected.clear();
    }

    fn insert(&mut self, bytes: Vec<u8>) -> usize {
        if let Some(slot) = self.texts.iter().position(|text| text.bytes() == bytes) {
            return slot;
        }
        self.push(Transformed::new(bytes))
    }

    fn push(&mut self, text: Transformed) -> usize {
        self.texts.push(text);
        self.scanned.push(false);
        self.selected.push(false);
        self.texts.len() - 1
    }

    fn raw_slot(&mut self, value: &[u8]) -> usize {
        if let Some(slot) = self.raw {
            return slot;
        }
        let slot = match std::str::from_utf8(value) {
            Ok(text) => match self.texts.iter().position(|known| known.bytes() == value) {
                Some(slot) => slot,
                None => {
                    let mut owned = self.spare.pop().unwrap_or_default();
                    owned.push_str(text);
                    self.push(Transformed {
                        invalid: None,
                        text: owned,
                    })
                }
            },
            Err(_) => self.insert(value.to_vec()),
        };
        self.raw = Some(slot);
        slot
    }

    fn text(&self, slot: usize) -> Option<&str> {
        self.texts.get(slot).map(|text| text.text.as_str())
    }

    /// Returns the found-group set of a slot, scanning its text on first use.
    fn found(&mut self, prefilter: &Prefilter, slot: usize) -> &[u64] {
        let start = slot * self.words;
        let end = start + self.words;
        if self.found.len() < end {
            self.found.resize(end, 0);
        }
        if !self.scanned.get(slot).copied().unwrap_or(true) {
            let set = &mut self.found[start..end];
            set.iter_mut().for_each(|word| *word = 0);
            if let Some(text) = self.texts.get(slot) {
                prefilter.scan(&text.text, set);
            }
            self.scanned[slot] = true;
        }
        &self.found[start..end]
    }

    /// Returns the rules that pass their gate on a slot's text, scanning it
    /// and computing the mask on first use.
    fn passing(&mut self, prefilter: &Prefilter, selection: &Selection, slot: usize) -> &[u64] {
        let words = selection.words();
        let start = slot * words;
        let end = start + words;
        if self.passing.len() < end {
            self.passing.resize(end, 0);
        }
        if !self.selected.get(slot).copied().unwrap_or(true) {
            self.found(prefilter, slot);
            let found = self
                .found
                .get(slot * self.words..(slot + 1) * self.words)
                .unwrap_or_default();
            selection.passing(found, &mut self.passing[start..end]);
            self.selected[slot] = true;
        }
        &self.passing[start..end]
    }
}

/// One value after one transform chain.
#[derive(Clone)]
struct Transformed {
    /// The output bytes when they are not valid UTF-8, because `text` then
    /// differs from them. Valid output is kept once, as `text`.
    invalid: Option<Vec<u8>>,
    /// The lossy UTF-8 view that rules match.
    text: String,
}

impl Transformed {
    fn new(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(text) => Transformed {
                invalid: None,
                text,
            },
            Err(error) => {
                let bytes = error.into_bytes();
                let text = to_text(&bytes);
                Transformed {
                    invalid: Some(bytes),
                    text,
                }
            }
        }
    }

    /// Returns the output bytes, which chains that extend this one continue
    /// from.
    fn bytes(&self) -> &[u8] {
        self.invalid.as_deref().unwrap_or(self.text.as_bytes())
    }
}

/// Returns, for each chain, the index of the longest other chain that is a
/// proper prefix of it.
fn chain_parents(chains: &[Vec<Transform>]) -> Vec<Option<usize>> {
    chains
        .iter()
        .map(|chain| {
            chains
                .iter()
                .enumerate()
                .filter(|(_, other)| other.len() < chain.len() && chain.starts_with(other))
                .max_by_key(|(_, other)| other.len())
                .map(|(index, _)| index)
        })
        .collect()
}

fn request_path(headers: &HeaderPairs) -> String {
    let raw = first_value(headers, ":path").unwrap_or_default();
    String::from_utf8_lossy(split_path(raw).0).into_owned()
}

fn mask_excerpt(matched: &str) -> String {
    mask_control(&truncate_chars(matched, MAX_EXCERPT_CHARS))
}

fn mask_control(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

mod memo;
mod prefilter;
mod selection;

/// Tells whether a value is a bearer credential that no rule needs to read:
/// `Bearer <token68>` in `Authorization`, or a compact JWT anywhere. Their
/// alphabet (letters, digits, `-._~+/=`) cannot spell the quotes, brackets,
/// spaces and shell characters that injections need, while running every
/// rule over a 600-byte token costs more than the rest of the request.
/// Basic credentials are still read, because applications decode them.
fn is_opaque_credential(target: &Target) -> bool {
    const MIN_TOKEN_BYTES: usize = 16;
    let value = target.value.as_slice();
    let token68 = |token: &[u8]| {
        let body = token.strip_suffix(b"=").unwrap_or(token);
        let body = body.strip_suffix(b"=").unwrap_or(body);
        token.len() >= MIN_TOKEN_BYTES
            && !token.windows(2).any(|pair| pair == b"..")
            && body
                .iter()
                .all(|&byte| byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte))
    };
    let bearer = target.kind == TargetKind::HeaderValue
        && target.name == "authorization"
        && value.len() > 7
        && value[..7].eq_ignore_ascii_case(b"bearer ")
        && token68(&value[7..]);
    bearer || is_compact_jwt(value)
}

/// Tells whether a value has the shape of a signed compact JWT: three
/// base64url segments, a header that starts `{"` (`eyJ`) and a signature of
/// at least 32 characters.
fn is_compact_jwt(value: &[u8]) -> bool {
    let mut segments = value.split(|&byte| byte == b'.');
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return false;
    };
    let base64url = |segment: &[u8]| {
        segment
            .iter()
            .all(|&byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    };
    header.starts_with(b"eyJ")
        && header.len() >= 16
        && signature.len() >= 32
        && base64url(header)
        && base64url(payload)
        && base64url(signature)
}

#[cfg(test)]
mod tests;
