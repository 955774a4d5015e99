"""The ``videobert`` operator: VideoBERT (Sun et al., ICCV 2019) behind the vtzoo interface.

A video becomes visual words: S3D ``mixed_5c`` features of 30-frame clips at 20 fps (1.5 s),
each mapped to its leaf in the model's k-means tree. Then:

* ``embed_video``: ``[CLS] [>] words [SEP]`` through the transformer; ``pooled`` is the mean of the
  visual words' last hidden states, ``tokens`` those states;
* ``embed_text``: ``[CLS] text [SEP]``; ``pooled`` the mean of the text tokens' states;
* ``similarity``: the linguistic-visual alignment probability of every (text, video) pair, a
  cross-encoder (one forward pass per pair: re-rank a shortlist with it);
* ``classify`` / :meth:`zero_shot`: the template "now let me show you how to [MASK] the [MASK]"
  before the video, read at the two masks against the given verbs and nouns;
* :meth:`predict_next_words` (what happens next) and :meth:`fill_in` (video-to-text fill-in).

Inputs: paths / bytes / decoded frames, a clip-feature tensor (N, feature_dim) or a batch
(B, N, feature_dim), or visual word ids (a LongTensor (N,)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Sequence

import torch

from vtzoo.backbones.clip_features import ClipFeatureInput
from vtzoo.errors import InputError
from vtzoo.operators.base import (
    TEXT_EMBEDDING,
    VIDEO_CLASSIFICATION,
    VIDEO_EMBEDDING,
    VIDEO_TEXT_SIMILARITY,
    Embeddings,
    Operator,
    OperatorOptions,
    as_text_list,
    input_provenance,
    item_source,
    video_items,
)
from vtzoo.operators.videobert.inputs import SpecialTokens, Sequence_, collate, layout
from vtzoo.operators.videobert.model import ALIGNED, VideoBertModel
from vtzoo.registry.operators import register_operator

TEMPLATE = "now let me show you how to [MASK] the [MASK]"


@dataclass
class VideoBertOptions(OperatorOptions):
    """``vocabulary``: a fitted visual vocabulary (``vtzoo videobert-vocab``) to install;
    ``s3d_weights``: S3D weights for raw video (None or "random": seeded random S3D);
    ``clip_size``: S3D input size (224 as the paper; smaller is faster)."""

    vocabulary: Any = None
    s3d_weights: Any = None
    clip_size: int = 224


@register_operator("videobert")
class VideoBertOperator(ClipFeatureInput, Operator):
    summary = "BERT over text and k-means visual words of S3D clips (Sun et al. 2019)"
    tasks = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY, VIDEO_CLASSIFICATION})
    default_variant = "paper-large"
    model_class = VideoBertModel
    options_class = VideoBertOptions
    default_batch_size = 16
    tokenizer_kind = "bert"
    from_paper = True
    pipeline_methods: ClassVar[tuple[str, ...]] = ("visual_words",)

    def setup(self) -> None:
        if self.options.vocabulary is not None:
            from vtzoo.operators.videobert.visual_words import VisualVocabulary

            vocabulary = self.options.vocabulary
            if not isinstance(vocabulary, VisualVocabulary):
                vocabulary = VisualVocabulary.load(vocabulary)
            if vocabulary.extractor and vocabulary.extractor != self.clips.extractor_id:
                from vtzoo.operators.videobert.visual_words import VocabularyMismatch

                raise VocabularyMismatch(
                    f"visual vocabulary {self.options.vocabulary} was fitted on features of {vocabulary.extractor!r}; "
                    f"this operator extracts {self.clips.extractor_id!r}"
                )
            self.model.set_vocabulary(vocabulary)
            self.model.config.vocabulary_extractor = vocabulary.extractor

    @classmethod
    def tiny_config(cls, card) -> dict[str, Any]:
        return {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
                "branching": 3, "levels": 2, "max_text_tokens": 24, "max_video_tokens": 24, "max_position_embeddings": 64,
                "verbs": ("move", "jump", "spin"), "nouns": ("square", "circle", "ball")}

    # -- visual words -----------------------------------------------------------------------------
    def clip_features(self, video: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        """(N, feature_dim) features of one video (decoded here, or given), with provenance."""
        fitted_on = self.config.vocabulary_extractor
        decoding = not (isinstance(video, torch.Tensor) and video.is_floating_point() and video.dim() == 2)
        if decoding and fitted_on and fitted_on != self.clips.extractor_id:
            from vtzoo.operators.videobert.visual_words import VocabularyMismatch

            raise VocabularyMismatch(f"this model's visual vocabulary was fitted on features of {fitted_on!r}, "
                                     f"but this operator extracts {self.clips.extractor_id!r}", source=item_source(video))
        return self.clips(video, item_source(video))

    def visual_words(self, video: Any) -> torch.Tensor:
        """(N,) visual word ids of one video (a LongTensor is taken as words already)."""
        if isinstance(video, torch.Tensor) and not video.is_floating_point():
            words = video.long().flatten()
            if words.numel() and (words.min() < 0 or words.max() >= self.config.visual_vocab_size):
                raise InputError(f"visual words must lie in [0, {self.config.visual_vocab_size})", source="<words>")
            return words
        features, _ = self.clip_features(video)
        return self.model.vocabulary.tokenize(features.cpu())

    def _words_of(self, videos: Any) -> tuple[list[list[int]], list[dict[str, Any]]]:
        items = list(videos) if isinstance(videos, torch.Tensor) and videos.dim() == 3 else video_items(videos)
        words, provenance = [], []
        for item in items:
            if isinstance(item, torch.Tensor) and not item.is_floating_point():
                words.append(self.visual_words(item).tolist())
                provenance.append(input_provenance("<visual words>")[0])
                continue
            features, record = self.clip_features(item)
            words.append(self.model.vocabulary.tokenize(features.cpu()).tolist())
            provenance.append(record)
        return words, provenance

    # -- running the transformer --------------------------------------------------------------------
    @property
    def special(self) -> SpecialTokens:
        return SpecialTokens.of(self.tokenizer)

    def text_ids(self, texts: Sequence[str]) -> list[list[int]]:
        encoded = self.tokenizer(list(texts), add_special_tokens=False, truncation=True,
                                 max_length=self.config.max_text_tokens)["input_ids"]
        return [list(ids) for ids in encoded]

    def _run(self, sequences: list[Sequence_]) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor]]:
        """``(rows, hidden states, pooled [CLS])`` of ``sequences``, batch by batch, under
        :meth:`compute` (the caller applies the heads it reads inside the loop)."""
        with self.compute():
            for part in self.batches(len(sequences)):
                batch = {k: v.to(self.device) for k, v in collate(sequences[part], self.special.pad).items()}
                yield part, *self.model.encode(**batch)

    def _logits_at(self, sequences: list[Sequence_], positions: list[list[int]]) -> list[torch.Tensor]:
        """For each sequence, the token head's logits (P, vocab_size) at its ``positions``."""
        out = []
        for part, hidden, _ in self._run(sequences):
            for row, index in enumerate(range(part.start, part.stop)):
                out.append(self.model.token_logits(hidden[row, positions[index]]).float().cpu())
        return out

    def _pooled(self, sequences: list[Sequence_], which: str) -> Embeddings:
        pooled, tokens = [], []
        for part, hidden, _ in self._run(sequences):
            hidden = hidden.float()
            for row, seq in enumerate(sequences[part]):
                positions = seq.video_positions if which == "video" else seq.text_positions
                states = hidden[row, positions] if positions else hidden[row, :1]
                pooled.append(states.mean(0))
                tokens.append(states)
        length = max(t.shape[0] for t in tokens)
        mask = torch.zeros(len(tokens), length, dtype=torch.long)
        padded = torch.zeros(len(tokens), length, tokens[0].shape[1])
        for row, states in enumerate(tokens):
            padded[row, : states.shape[0]] = states.cpu()
            mask[row, : states.shape[0]] = 1
        return Embeddings(pooled=torch.stack(pooled).cpu(), tokens=padded, mask=mask)

    # -- tasks ------------------------------------------------------------------------------------
    def embed_video(self, videos: Any) -> Embeddings:
        words, provenance = self._words_of(videos)
        out = self._pooled([layout(None, w or [0], self.config, self.special) for w in words], "video")
        out.extras.update(provenance=provenance, visual_words=words)
        return out

    def embed_text(self, texts: Sequence[str]) -> Embeddings:
        ids = self.text_ids(as_text_list(texts))
        out = self._pooled([layout(t, None, self.config, self.special) for t in ids], "text")
        out.extras["text_ids"] = ids
        return out

    def similarity(self, text: Embeddings, video: Embeddings) -> torch.Tensor:
        """P(aligned) of every (text, video) pair from the ``[CLS]`` classifier: (n_text, n_video)."""
        if "text_ids" not in text.extras or "visual_words" not in video.extras:
            raise InputError("videobert scores pairs from their tokens: pass Embeddings from embed_text / embed_video")
        pairs = [(t, w) for t in text.extras["text_ids"] for w in video.extras["visual_words"]]
        sequences = [layout(t, w or [0], self.config, self.special) for t, w in pairs]
        logits = torch.cat([self.model.alignment_logits(pooled).float().cpu() for _, _, pooled in self._run(sequences)])
        return logits.softmax(-1)[:, ALIGNED].view(len(text), len(video))

    def zero_shot(self, videos: Any, verbs: Sequence[str], nouns: Sequence[str], top_k: int = 5) -> list[dict[str, list]]:
        """Verb and noun predictions at the template's two masks, against the given lists."""
        verb_ids, noun_ids = self._label_ids(verbs, "verbs"), self._label_ids(nouns, "nouns")
        template = self.text_ids([TEMPLATE.replace("[MASK]", self.tokenizer.mask_token)])[0]
        masks = [i for i, token in enumerate(template) if token == self.special.mask]
        words, _ = self._words_of(videos)
        sequences = [layout(template, w or [0], self.config, self.special) for w in words]
        results = []
        for logits in self._logits_at(sequences, [[1 + masks[0], 1 + masks[1]]] * len(sequences)):
            verb_logits = logits[0, verb_ids].log_softmax(-1)
            noun_logits = logits[1, noun_ids].log_softmax(-1)
            results.append({"verb": _top(verbs, verb_logits, top_k), "noun": _top(nouns, noun_logits, top_k)})
        return results

    def classify(self, videos: Any, top_k: int = 5, verbs: Sequence[str] | None = None,
                 nouns: Sequence[str] | None = None) -> list[list[tuple[str, float]]]:
        """Zero-shot "verb noun" labels, ranked by the product of the two probabilities; the lists
        default to the config's ``verbs`` / ``nouns``."""
        verbs, nouns = list(verbs or self.config.verbs), list(nouns or self.config.nouns)
        if not verbs or not nouns:
            raise InputError("videobert classifies zero-shot: pass verbs=[...] and nouns=[...] to choose from")
        rows = []
        for result in self.zero_shot(videos, verbs, nouns, top_k=max(len(verbs), len(nouns))):
            pairs = [(f"{v} {n}", pv * pn) for v, pv in result["verb"] for n, pn in result["noun"]]
            rows.append(sorted(pairs, key=lambda p: -p[1])[:top_k])
        return rows

    def predict_next_words(self, videos: Any, count: int = 1) -> list[list[int]]:
        """What happens next: ``count`` visual words appended greedily after each video's own."""
        words, _ = self._words_of(videos)
        for _ in range(count):
            sequences = [layout(None, (w or [0]) + [0], self.config, self.special) for w in words]
            for seq in sequences:  # the appended position is the one to predict
                seq.ids[seq.video_positions[-1]] = self.special.mask
            logits = self._logits_at(sequences, [[seq.video_positions[-1]] for seq in sequences])
            for row, scores in enumerate(logits):
                words[row] = words[row] + [int(self.model.visual_word_logits(scores[0]).argmax())]
        return [w[-count:] for w in words]

    def fill_in(self, videos: Any, template: str) -> list[str]:
        """Video-to-text: each ``[MASK]`` of ``template`` filled with the most likely text word."""
        ids = self.text_ids([template.replace("[MASK]", self.tokenizer.mask_token)])[0]
        masks = [i for i, token in enumerate(ids) if token == self.special.mask]
        if not masks:
            raise InputError(f"fill_in needs a template with [MASK], got {template!r}")
        words, _ = self._words_of(videos)
        sequences = [layout(ids, w or [0], self.config, self.special) for w in words]
        texts = []
        for logits in self._logits_at(sequences, [[1 + m for m in masks]] * len(sequences)):
            filled = list(ids)
            for m, scores in zip(masks, logits):
                filled[m] = int(self.model.text_word_logits(scores).argmax())
            texts.append(self.tokenizer.decode(filled))
        return texts

    def _label_ids(self, labels: Sequence[str], what: str) -> list[int]:
        if not labels:
            raise InputError(f"zero-shot needs a non-empty list of {what}")
        ids = []
        for label in labels:
            pieces = self.tokenizer(label, add_special_tokens=False)["input_ids"]
            if len(pieces) != 1:
                raise InputError(f"{what}: {label!r} is not one word of the text vocabulary ({len(pieces)} word pieces)")
            ids.append(pieces[0])
        return ids

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        return torch.randn(batch_size, num_frames or 8, self.config.feature_dim, generator=generator)


def _top(labels: Sequence[str], log_probs: torch.Tensor, k: int) -> list[tuple[str, float]]:
    probs = log_probs.exp()
    order = probs.argsort(descending=True)[:k]
    return [(labels[int(i)], float(probs[i])) for i in order]
