"""Domain logic. Every function takes the caller's tenant (and principal) explicitly and
scopes every query by it; tools and REST routes are thin layers over these."""
