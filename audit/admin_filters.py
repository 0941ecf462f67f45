"""List filters the admin's lists share: a date range with its presets, on an indexed column."""

from datetime import date, datetime, time, timedelta

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.utils import timezone


class DateRangeFilter(admin.DateFieldListFilter):
    """Django's presets (today, past 7 days, ...) and a from/to pair of dates, both inclusive.

    The range becomes `field >= from 00:00` and `field < (to + 1 day) 00:00`, never a cast to
    date, so the column's index still serves it.
    """

    template = "admin/audit/date_range_filter.html"

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.from_kwarg = f"{field_path}__from"
        self.to_kwarg = f"{field_path}__to"
        self.from_value = _last(params.get(self.from_kwarg))
        self.to_value = _last(params.get(self.to_kwarg))
        super().__init__(field, request, params, model, model_admin, field_path)
        # The other filters and the search, kept when the form is submitted.
        self.hidden_params = [
            (name, value)
            for name, values in request.GET.lists()
            if not name.startswith(self.field_generic) and name != "p"
            for value in values
        ]

    def expected_parameters(self):
        return [*super().expected_parameters(), self.from_kwarg, self.to_kwarg]

    def queryset(self, request, queryset):
        self.used_parameters.pop(self.from_kwarg, None)
        self.used_parameters.pop(self.to_kwarg, None)
        queryset = super().queryset(request, queryset)
        if self.from_value:
            since = _midnight(_date(self.from_value))
            queryset = queryset.filter(**{f"{self.field_path}__gte": since})
        if self.to_value:
            until = _midnight(_date(self.to_value) + timedelta(days=1))
            queryset = queryset.filter(**{f"{self.field_path}__lt": until})
        return queryset


def _last(value) -> str:
    if isinstance(value, list):
        value = value[-1] if value else ""
    return (value or "").strip()


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise IncorrectLookupParameters(f"not a date (YYYY-MM-DD): {text[:40]!r}") from None


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time()))
