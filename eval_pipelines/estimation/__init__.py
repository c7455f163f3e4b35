"""Label-free performance estimation: the day's accuracy from calibrated confidence (docs/estimation.md)."""
