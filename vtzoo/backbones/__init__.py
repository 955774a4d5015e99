"""Shared encoders used by several families (CLIP towers, S3D, BERT-family text towers)."""
