"""CBT (Sun et al. 2019): contrastive bidirectional transformers over continuous S3D features, from the paper."""
