"""One adapter per outbound channel, all behind ``base.Adapter``."""
