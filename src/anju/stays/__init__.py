"""Stays: bookings (direct or imported from booking systems), check-in, check-out, visitors."""
