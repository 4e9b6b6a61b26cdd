"""The e-office tables that services share, in modules that import no service.

Services import these modules; a service module never imports another only to reach a table, so
the table graph is no longer the import graph. Tables used by one service alone stay with it
(``audit``, ``digest``, ``registers``, ``uploads``); ``eoffice.org`` (units and users) is a table
module already and stays where it is.
"""
