//! The weights of a checkpoint folder: one `model.safetensors`, or the shards a `model.safetensors.index.json` names.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::Error;
use crate::file::{Entry, TensorFile};

/// Name of a single-file checkpoint's weights.
pub const SINGLE_FILE: &str = "model.safetensors";
/// Name of a sharded checkpoint's index.
pub const SHARD_INDEX: &str = "model.safetensors.index.json";

/// Every tensor of a checkpoint, found by name across its files.
#[derive(Debug)]
pub(crate) struct TensorStore {
    files: Vec<TensorFile>,
    /// For a sharded checkpoint: tensor name -> index into `files`, from the index's weight map.
    shard_of: Option<HashMap<String, usize>>,
    /// The file to blame when a tensor is missing: the single file, or the shard index.
    listing: PathBuf,
}

/// A tensor found in the store: its entry and the file that holds it.
pub(crate) struct Located<'a> {
    pub(crate) entry: &'a Entry,
    pub(crate) path: &'a Path,
}

impl TensorStore {
    /// Opens `dir/model.safetensors` if it exists (as transformers prefers it), else the shards
    /// listed in `dir/model.safetensors.index.json`.
    pub(crate) fn open(dir: &Path) -> Result<Self, Error> {
        let single = dir.join(SINGLE_FILE);
        if single.is_file() {
            let file = TensorFile::open(&single)?;
            return Ok(Self {
                files: vec![file],
                shard_of: None,
                listing: single,
            });
        }
        let index = dir.join(SHARD_INDEX);
        if index.is_file() {
            return Self::open_sharded(dir, index);
        }
        Err(Error::NoWeights {
            dir: dir.to_owned(),
        })
    }

    fn open_sharded(dir: &Path, index: PathBuf) -> Result<Self, Error> {
        let text = std::fs::read(&index).map_err(|source| Error::Io {
            path: index.clone(),
            source,
        })?;
        let json: Value = serde_json::from_slice(&text).map_err(|source| Error::Json {
            path: index.clone(),
            source,
        })?;
        let invalid = |detail: String| Error::ShardIndex {
            path: index.clone(),
            detail,
        };
        let Some(weight_map) = json.get("weight_map").and_then(Value::as_object) else {
            return Err(invalid("no `weight_map` object".to_owned()));
        };

        // Open each distinct shard once, in name order so errors are deterministic.
        let mut shard_names = BTreeMap::new();
        for (tensor, shard) in weight_map {
            let Some(shard) = shard.as_str() else {
                return Err(invalid(format!(
                    "tensor `{tensor}` maps to `{shard}`, not a file name"
                )));
            };
            if !is_plain_file_name(shard) {
                return Err(invalid(format!(
                    "tensor `{tensor}` maps to `{shard}`, which is not a file name in this folder"
                )));
            }
            shard_names.insert(shard, usize::MAX);
        }
        let mut files = Vec::with_capacity(shard_names.len());
        for (position, (shard, slot)) in shard_names.iter_mut().enumerate() {
            files.push(TensorFile::open(&dir.join(shard))?);
            *slot = position;
        }

        let mut shard_of = HashMap::with_capacity(weight_map.len());
        for (tensor, shard) in weight_map {
            // Both lookups succeed: every shard name was inserted and opened above.
            let file = shard
                .as_str()
                .and_then(|name| shard_names.get(name))
                .copied();
            let Some(file) = file else { continue };
            if files[file].entry(tensor).is_none() {
                return Err(Error::MissingTensor {
                    path: files[file].path().to_owned(),
                    tensor: tensor.clone(),
                });
            }
            shard_of.insert(tensor.clone(), file);
        }
        Ok(Self {
            files,
            shard_of: Some(shard_of),
            listing: index,
        })
    }

    /// The tensor `name`, or a [`Error::MissingTensor`] naming the file that should hold it.
    pub(crate) fn get(&self, name: &str) -> Result<Located<'_>, Error> {
        let file = match &self.shard_of {
            None => self.files.first(),
            Some(shard_of) => shard_of.get(name).and_then(|&index| self.files.get(index)),
        };
        file.and_then(|file| {
            file.entry(name).map(|entry| Located {
                entry,
                path: file.path(),
            })
        })
        .ok_or_else(|| Error::MissingTensor {
            path: self.listing.clone(),
            tensor: name.to_owned(),
        })
    }
}

/// Whether `name` is a bare file name (no directories, no `..`), so a shard index cannot
/// point outside its folder.
fn is_plain_file_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    )
}
