# Audit times are read to the second and compared across zones: ISO-like, seconds, zone name
# ("2026-12-06 08:29:03 UTC"), instead of English's "Dec. 6, 2026, 8:29 a.m.".
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
