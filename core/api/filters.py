"""The base of the API's django-filter FilterSets: a filter given with no value is a 400, not ignored.

django-filter skips empty values, so `?status=` or `?agent_id=` would list everything, as if the
filter had not been sent: a client that built its query wrongly never learns it.
"""

import django_filters


class StrictFilterSet(django_filters.FilterSet):
    # A dashboard form sends every field, blank ones included: its subclass turns this off.
    refuse_blank = True

    def is_valid(self) -> bool:
        valid = super().is_valid()
        if not self.refuse_blank:
            return valid
        getlist = getattr(self.data, "getlist", lambda name: [self.data.get(name)])
        for name in self.filters:
            if name in self.data and any(value is None or str(value).strip() == "" for value in getlist(name)):
                self.form.add_error(name, "Give a value, or leave the parameter out.")
                valid = False
        return valid
