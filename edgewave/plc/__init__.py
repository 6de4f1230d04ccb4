"""Packet-loss concealment: models of which frames a network loses (`loss`), the classic
concealers a neural one is measured against (`baselines`: zero fill, frame repetition and
ITU-T G.711 Appendix I), and the scores that compare them (`metrics`: PESQ, STOI and the
SNR over the lost samples)."""
