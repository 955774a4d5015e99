"""irCSN-152 (Tran et al., ICCV 2019): MDMMT's motion expert, an operator of its own (``ircsn152``)."""
