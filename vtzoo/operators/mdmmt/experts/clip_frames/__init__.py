"""CLIP image features of video frames: MDMMT's CLIP expert, an operator of its own (``clip_frames``)."""
