# A lookup plugin written for recover's tests: each term upper-cased.
from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return [str(t).upper() for t in terms]
