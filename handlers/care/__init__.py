"""Care schedules, one room a module: schedule.py (/schedule, reminder time, snooze), forms.py
(the care and oxygen forms), overdue.py (/overdue, /upcoming, CSV, a person's schedule),
policy.py (/carepolicy); the oxygen buttons are handlers/oxygen.py. Each has its `build`,
registered in bot/app.py.
The reminder pass and oxygen escalations are timers (scheduler/care.py), reached through
`context.timers` after a change.

Callback data (all well under 64 bytes):

    cs:d:<item>:<yyyymmdd>     Done (a form: the date; for an exam, where and a result)
    cs:b:<item>:<yyyymmdd>     Booked for... (a form: the date)
    cs:z:<item>:<yyyymmdd>     Snooze: choose how long; cs:zz:<item>:<yyyymmdd>:<days>
    cs:rt / cs:rt:<hh|def>     the person's reminder time
    cs:csv:<o|u>               CSV of /overdue or /upcoming
    cs:p:<person>              an admin's view of one person's schedule
    cs:as:<person>:<rest|exam> an admin sets or moves a date (a form: the date)
    cs:pol / cs:pol:<band>     the policy table / one band
    cs:pv:<band>:<field>       choose a value; cs:ps:<band>:<field>:<value|off> sets it
    cs:pt:<band>:<code>        toggle an exam content; cs:pc:<band> confirms the band
    cf:...                     answers inside the care form
    ox:new                     a new oxygen request (the form)
    ox:ack:<id> / ox:dlv:<id>  acknowledge / mark delivered (duty officers, admins)
    ox:cxl:<id>                the cadre cancels their own request
"""
