"""VideoBERT (Sun et al., ICCV 2019): BERT over text and k-means visual words, from the paper."""
