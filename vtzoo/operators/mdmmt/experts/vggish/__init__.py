"""VGGish (Hershey et al., ICASSP 2017): MDMMT's audio expert, an operator of its own (``vggish``)."""
