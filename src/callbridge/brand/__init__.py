"""A company's brand on callbridge's pages: its accent colour and its logo, checked."""
