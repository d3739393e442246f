//! Packs the module as OCI image layouts in the two formats Istio and Envoy Gateway pull:
//!
//! - `compat`: an ordinary image whose single tar+gzip layer holds `plugin.wasm`;
//! - `oci`: the Wasm artifact format, a `application/vnd.module.wasm.config.v1+json` config
//!   and the module itself as a `application/vnd.module.wasm.content.layer.v1+wasm` layer.
//!
//! Builds are reproducible: the tar entry, the gzip header and the JSON documents carry no
//! time stamps, owners or host details, so the same module gives the same digests.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, RootFsBuilder,
    Sha256Digest, ANNOTATION_REF_NAME,
};
use sha2::{Digest as _, Sha256};

/// Media type of the Wasm artifact's config.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.module.wasm.config.v1+json";
/// Media type of the Wasm artifact's module layer.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// File name of the module inside a `compat` layer, where Istio looks for it.
pub const COMPAT_FILE_NAME: &str = "plugin.wasm";

/// The two image formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Compat,
    Oci,
}

impl Format {
    fn dir_name(self) -> &'static str {
        match self {
            Format::Compat => "compat",
            Format::Oci => "oci",
        }
    }
}

/// Arguments of `host-test oci`.
#[derive(clap::Args, Debug)]
pub struct OciArgs {
    /// The module to pack.
    #[arg(long, default_value = "dist/portcullis.wasm")]
    pub wasm: PathBuf,
    /// Directory that receives one image layout per format (`compat/`, `oci/`).
    #[arg(long, default_value = "dist/oci")]
    pub out: PathBuf,
    /// Tag recorded as the manifest's `org.opencontainers.image.ref.name`.
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    pub tag: String,
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a blob into the layout and returns its descriptor.
fn write_blob(layout: &Path, media_type: MediaType, data: &[u8]) -> anyhow::Result<Descriptor> {
    let hex = sha256_hex(data);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    std::fs::write(dir.join(&hex), data).with_context(|| format!("failed to write blob {hex}"))?;
    let digest: Sha256Digest = hex
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid digest {hex}: {e}"))?;
    DescriptorBuilder::default()
        .media_type(media_type)
        .size(data.len() as u64)
        .digest(digest)
        .build()
        .map_err(|e| anyhow::anyhow!("invalid descriptor: {e}"))
}

/// A tar archive holding only `plugin.wasm`, with fixed owner, mode and time.
fn compat_tar(wasm: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(wasm.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, COMPAT_FILE_NAME, wasm)
        .context("failed to write the tar entry")?;
    builder
        .into_inner()
        .context("failed to finish the tar archive")
}

/// Gzip with a zero time stamp and no file name, so the bytes depend on the input only.
fn gzip(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(data)
        .context("failed to compress the layer")?;
    encoder.finish().context("failed to compress the layer")
}

fn to_json<T: serde::Serialize>(value: &T) -> anyhow::Result<Vec<u8>> {
    serde_json::to_vec(value).context("failed to serialize")
}

/// Builds one image layout under `out/<format>` and returns the manifest digest.
pub fn pack(wasm: &[u8], out: &Path, format: Format, tag: &str) -> anyhow::Result<String> {
    let layout = out.join(format.dir_name());
    if layout.exists() {
        std::fs::remove_dir_all(&layout)
            .with_context(|| format!("failed to clear {}", layout.display()))?;
    }
    std::fs::create_dir_all(&layout)?;
    let (config, layer) = match format {
        Format::Compat => {
            let tar = compat_tar(wasm)?;
            let rootfs = RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![format!("sha256:{}", sha256_hex(&tar))])
                .build()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let config = ImageConfigurationBuilder::default()
                .architecture(Arch::Wasm)
                .os(Os::Other("wasip1".to_string()))
                .rootfs(rootfs)
                .config(
                    ConfigBuilder::default()
                        .build()
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                )
                .build()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let config = write_blob(&layout, MediaType::ImageConfig, &to_json(&config)?)?;
            let layer = write_blob(&layout, MediaType::ImageLayerGzip, &gzip(&tar)?)?;
            (config, layer)
        }
        Format::Oci => {
            let config = serde_json::json!({"abiVersions": ["v0.2.1"], "type": "proxy-wasm"});
            let config = write_blob(
                &layout,
                MediaType::Other(WASM_CONFIG_MEDIA_TYPE.to_string()),
                &to_json(&config)?,
            )?;
            let layer = write_blob(
                &layout,
                MediaType::Other(WASM_LAYER_MEDIA_TYPE.to_string()),
                wasm,
            )?;
            (config, layer)
        }
    };
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(vec![layer])
        .build()
        .map_err(|e| anyhow::anyhow!("invalid manifest: {e}"))?;
    let mut manifest_descriptor =
        write_blob(&layout, MediaType::ImageManifest, &to_json(&manifest)?)?;
    manifest_descriptor.set_annotations(Some(
        [(ANNOTATION_REF_NAME.to_string(), tag.to_string())].into(),
    ));
    let digest = manifest_descriptor.digest().to_string();
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest_descriptor])
        .build()
        .map_err(|e| anyhow::anyhow!("invalid index: {e}"))?;
    std::fs::write(layout.join("index.json"), to_json(&index)?)?;
    let marker = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(layout.join("oci-layout"), to_json(&marker)?)?;
    Ok(digest)
}

/// Packs the module in both formats and prints each manifest digest.
pub fn run(args: OciArgs) -> anyhow::Result<()> {
    let wasm = std::fs::read(&args.wasm).with_context(|| {
        format!(
            "failed to read {}; build it with `make build`",
            args.wasm.display()
        )
    })?;
    for format in [Format::Compat, Format::Oci] {
        let digest = pack(&wasm, &args.out, format, &args.tag)?;
        println!(
            "{} {} {digest}",
            format.dir_name(),
            args.out.join(format.dir_name()).display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_is_reproducible() {
        let dir = std::env::temp_dir().join(format!("portcullis-oci-unit-{}", std::process::id()));
        let wasm = b"\0asm\x01\0\0\0".to_vec();
        for format in [Format::Compat, Format::Oci] {
            let first = pack(&wasm, &dir.join("a"), format, "t").unwrap();
            let second = pack(&wasm, &dir.join("b"), format, "t").unwrap();
            assert_eq!(first, second, "{format:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn compat_layer_holds_plugin_wasm() {
        let tar = compat_tar(b"module").unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(entries, vec![COMPAT_FILE_NAME.to_string()]);
    }
}
