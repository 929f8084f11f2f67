"""The tenant dashboard's shared pieces: who is signed in to which tenant, the page base, sign-in."""
