"""MDMMT's feature experts, each an operator of its own: ``clip_frames`` (CLIP frames),
``vggish`` (audio) and ``ircsn152`` (motion); :mod:`.expert` holds what they share."""
