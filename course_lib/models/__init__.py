"""Model families taught in the chapters: one module per family (vae, ...)."""
