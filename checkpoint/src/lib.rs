//! BitNet b1.58 checkpoints: `config.json` + safetensors in, validated tensors out.
