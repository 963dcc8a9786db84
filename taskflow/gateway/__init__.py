"""The Litestar gateway: writes events, reads projections."""
