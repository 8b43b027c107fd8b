// Every word the app shows, in English and Dutch. {name} is filled in by t(); keys ending in .one/.other
// are picked by count with tn().
export const MESSAGES = {
  en: {
    "nav.main": "Main", "nav.inbox": "Inbox", "nav.users": "Users", "nav.departments": "Departments",
    "nav.accounts": "Accounts", "nav.dashboard": "Dashboard", "nav.language": "Language", "nav.logout": "Log out",
    "nav.skip": "Skip to content", "nav.content": "Content",

    "login.title": "Log in", "login.intro": "The joint webcare inbox. Log in with your work email.",
    "login.email": "Email", "login.password": "Password", "login.submit": "Log in",
    "login.bad": "That email and password do not match.", "login.expired": "Your session has ended. Please log in again.",
    "login.logged_out": "You are logged out.",

    "live.connecting": "Connecting…", "live.live": "Live", "live.reconnecting": "Reconnecting…",
    "live.lost": "Offline", "live.resumed": "Reconnected, caught up", "live.reloaded": "Reconnected, refreshed",
    "live.banner": "The connection is lost. What others do shows again once it is back; trying to reconnect…",
    "live.retry": "Try now",

    "inbox.views": "Views", "inbox.view": "View",
    "view.open": "All open", "view.mine": "Mine", "view.escalated": "Escalated to me", "view.department": "My department",
    "view.answered": "Answered", "view.closed": "Closed", "view.accounts": "Accounts", "view.account": "Account",
    "view.count.one": "{n} conversation", "view.count.other": "{n} conversations",

    "queue.search": "Search the queue", "queue.more": "Load more", "queue.loading": "Loading…",
    "queue.empty": "Nothing here. Well done.", "queue.none_found": "Nothing matches that search.",
    "queue.end": "That is everything.", "queue.waiting": "waiting {time}", "queue.claimed_by": "Claimed by {name}",
    "queue.claimed_by_you": "Claimed by you", "queue.escalated_to": "Escalated to {name}",
    "queue.viewing": "{names} looking", "queue.typing": "{names} typing",

    "status.open": "Open", "status.claimed": "Claimed", "status.escalated": "Escalated", "status.answered": "Answered",
    "status.closed": "Closed",

    "conversation.none": "No conversation open.",
    "conversation.none_hint": "Pick one from the queue, or press j and k to move and Enter to open. Press ? for all keys.",
    "conversation.back": "← Queue", "conversation.actions": "Actions", "conversation.messages": "Messages",
    "conversation.panels": "Help with this conversation", "conversation.opened": "Conversation with {name}",
    "conversation.unknown_author": "Unknown", "conversation.colleague": "A colleague",
    "conversation.also_here": "{names} also has this open.", "conversation.linked": "Linked:",
    "link.cross_post": "Cross-post", "link.duplicate": "Duplicate", "link.surge": "Same topic",

    "message.in": "Public", "message.out": "Reply", "message.note": "Internal note",

    "reply.awaiting_approval": "Awaiting approval", "reply.queued": "Queued", "reply.sending": "Sending…",
    "reply.sent": "Sent", "reply.failed": "Failed", "reply.retry": "Retry",

    "action.claim": "Claim", "action.release": "Release", "action.hand_back": "Hand back",
    "action.escalate": "Escalate", "action.close": "Close", "action.reopen": "Reopen",

    "composer.mode": "Write", "composer.reply": "Reply", "composer.note": "Internal note",
    "composer.reply_label": "Reply", "composer.note_label": "Internal note",
    "composer.reply_placeholder": "Write a reply… (Ctrl+Enter sends)",
    "composer.note_placeholder": "A note for colleagues… (Ctrl+Enter adds)",
    "composer.from": "Goes out from {account} on {platform}.",
    "composer.note_private": "Only colleagues see notes; they never leave the building.",
    "composer.count_limit": "{n} / {limit}", "composer.count": "{n} characters",
    "composer.send_reply": "Send reply", "composer.add_note": "Add note",
    "composer.others_typing": "{names} is typing a reply here too.",
    "composer.claimed_by_other": "{name} has claimed this conversation; only they can reply for now.",
    "composer.closed": "This conversation is closed; reopen it to reply.",

    "escalate.title": "Escalate", "escalate.to": "To", "escalate.pick": "Choose a person or a department…",
    "escalate.people": "People", "escalate.departments": "Departments",
    "escalate.department_experts": "{name} (the department's experts)",
    "escalate.note": "Note", "escalate.note_hint": "Why, and what you need from them. Only colleagues see it.",
    "escalate.incomplete": "Choose who gets it and write a note.",

    "close.title": "Close the conversation", "close.reason": "Reason", "close.resolved": "Resolved",
    "close.no_reply_needed": "No reply needed", "close.spam": "Spam",

    "dialog.cancel": "Cancel", "dialog.close": "Close",

    "done.claimed": "Claimed.", "done.released": "Released.", "done.reopened": "Reopened.",
    "done.escalated": "Escalated.", "done.closed": "Closed.", "done.noted": "Note added.",
    "done.queued": "Reply queued.", "done.sent": "Your reply was sent.", "done.failed": "Your reply could not be sent.",
    "done.retrying": "Trying again.",

    "help.title": "Keyboard shortcuts", "help.next": "Next conversation in the queue",
    "help.previous": "Previous conversation", "help.open": "Open the selected conversation",
    "help.claim": "Claim", "help.release": "Release or hand back", "help.reply": "Write a reply",
    "help.note": "Write an internal note", "help.escalate": "Escalate", "help.close": "Close with a reason",
    "help.reopen": "Reopen", "help.send": "Send what you wrote", "help.search": "Search the queue",
    "help.views": "Go to view 1 to 9", "help.back": "Leave the field, or go back to the queue",
    "help.help": "This overview", "help.more": "Shortcuts act on the open conversation, or else on the one selected.",

    "role.agent": "agent", "role.expert": "expert", "role.coordinator": "coordinator", "role.admin": "admin",

    "admin.new_users": "New user", "admin.new_departments": "New department", "admin.new_accounts": "New account",
    "admin.name": "Name", "admin.email": "Email", "admin.role": "Role", "admin.department": "Department",
    "admin.status": "Status", "admin.actions": "Actions", "admin.active": "Active", "admin.inactive": "Inactive",
    "admin.edit": "Edit", "admin.edit_named": "Edit {name}", "admin.save": "Save", "admin.create": "Create",
    "admin.saved": "Saved.", "admin.created": "Created.", "admin.no_department": "No department",
    "admin.password": "Password", "admin.new_password": "New password",
    "admin.password_keep": "Leave empty to keep the current one.", "admin.members": "People",
    "admin.account": "Account", "admin.health": "Health", "admin.platform": "Platform", "admin.handle": "Handle",
    "admin.restricted": "restricted", "admin.restricted_long": "Restricted: only its own department sees it",
    "admin.settings": "Settings", "admin.credentials": "Credentials",
    "admin.credentials_keep": "Stored and never shown. Fill these in only to replace them.",
    "admin.credentials_none": "None stored yet.", "admin.credentials_write_only": "Stored encrypted and never shown again.",

    "setting.base_url": "API address (base_url)", "setting.poll_interval": "Seconds between polls",
    "setting.page_id": "Page id", "setting.ig_user_id": "Instagram user id", "setting.verify_token": "Webhook verify token",
    "setting.address": "Email address", "setting.imap_host": "IMAP host", "setting.imap_port": "IMAP port",
    "setting.smtp_host": "SMTP host", "setting.smtp_port": "SMTP port", "setting.tls": "TLS",
    "setting.callback_url": "Callback URL for replies",
    "credential.consumer_key": "Consumer key", "credential.consumer_secret": "Consumer secret",
    "credential.access_token": "Access token", "credential.access_token_secret": "Access token secret",
    "credential.page_access_token": "Page access token", "credential.app_secret": "App secret",
    "credential.username": "User name", "credential.password": "Password", "credential.secret": "Signing secret",

    "health.paused": "Paused", "health.reauth": "Needs new credentials", "health.failing": "Failing ({n} in a row)",
    "health.push": "Takes messages in by push", "health.ok": "Healthy", "health.never": "Not polled yet",
    "health.polled": "Last polled {time} ago", "health.error": "Last error ({time} ago):",

    "error.already_claimed": "Someone else has claimed this conversation.",
    "error.already_claimed_by": "{name} has claimed this conversation.",
    "error.invalid_state": "That is not possible in this conversation's state.", "error.csrf": "Please reload the page.",
    "error.network": "No connection to the server.", "error.unknown": "Something went wrong.",

    "time.now": "< 1 min",
  },
  nl: {
    "nav.main": "Hoofdmenu", "nav.inbox": "Inbox", "nav.users": "Gebruikers", "nav.departments": "Afdelingen",
    "nav.accounts": "Accounts", "nav.dashboard": "Dashboard", "nav.language": "Taal", "nav.logout": "Uitloggen",
    "nav.skip": "Naar de inhoud", "nav.content": "Inhoud",

    "login.title": "Inloggen", "login.intro": "De gezamenlijke webcare-inbox. Log in met je werkmailadres.",
    "login.email": "E-mailadres", "login.password": "Wachtwoord", "login.submit": "Inloggen",
    "login.bad": "Dat e-mailadres en wachtwoord horen niet bij elkaar.",
    "login.expired": "Je sessie is verlopen. Log opnieuw in.", "login.logged_out": "Je bent uitgelogd.",

    "live.connecting": "Verbinden…", "live.live": "Live", "live.reconnecting": "Opnieuw verbinden…",
    "live.lost": "Offline", "live.resumed": "Weer verbonden, bijgewerkt", "live.reloaded": "Weer verbonden, ververst",
    "live.banner": "De verbinding is weg. Wat anderen doen, zie je weer zodra ze terug is; we proberen opnieuw…",
    "live.retry": "Nu proberen",

    "inbox.views": "Weergaven", "inbox.view": "Weergave",
    "view.open": "Alles open", "view.mine": "Van mij", "view.escalated": "Naar mij geëscaleerd",
    "view.department": "Mijn afdeling", "view.answered": "Beantwoord", "view.closed": "Gesloten",
    "view.accounts": "Accounts", "view.account": "Account",
    "view.count.one": "{n} gesprek", "view.count.other": "{n} gesprekken",

    "queue.search": "Zoek in de wachtrij", "queue.more": "Meer laden", "queue.loading": "Laden…",
    "queue.empty": "Niets te doen. Goed bezig.", "queue.none_found": "Niets gevonden.",
    "queue.end": "Dat is alles.", "queue.waiting": "wacht {time}", "queue.claimed_by": "Geclaimd door {name}",
    "queue.claimed_by_you": "Door jou geclaimd", "queue.escalated_to": "Geëscaleerd naar {name}",
    "queue.viewing": "{names} kijkt mee", "queue.typing": "{names} typt",

    "status.open": "Open", "status.claimed": "Geclaimd", "status.escalated": "Geëscaleerd",
    "status.answered": "Beantwoord", "status.closed": "Gesloten",

    "conversation.none": "Geen gesprek geopend.",
    "conversation.none_hint": "Kies er een uit de wachtrij, of ga met j en k en open met Enter. Druk ? voor alle toetsen.",
    "conversation.back": "← Wachtrij", "conversation.actions": "Acties", "conversation.messages": "Berichten",
    "conversation.panels": "Hulp bij dit gesprek", "conversation.opened": "Gesprek met {name}",
    "conversation.unknown_author": "Onbekend", "conversation.colleague": "Een collega",
    "conversation.also_here": "{names} heeft dit ook open.", "conversation.linked": "Gekoppeld:",
    "link.cross_post": "Ook elders gepost", "link.duplicate": "Dubbel", "link.surge": "Zelfde onderwerp",

    "message.in": "Publiek", "message.out": "Antwoord", "message.note": "Interne notitie",

    "reply.awaiting_approval": "Wacht op goedkeuring", "reply.queued": "In de wachtrij", "reply.sending": "Wordt verstuurd…",
    "reply.sent": "Verstuurd", "reply.failed": "Mislukt", "reply.retry": "Opnieuw proberen",

    "action.claim": "Claimen", "action.release": "Vrijgeven", "action.hand_back": "Teruggeven",
    "action.escalate": "Escaleren", "action.close": "Sluiten", "action.reopen": "Heropenen",

    "composer.mode": "Schrijven", "composer.reply": "Antwoord", "composer.note": "Interne notitie",
    "composer.reply_label": "Antwoord", "composer.note_label": "Interne notitie",
    "composer.reply_placeholder": "Schrijf een antwoord… (Ctrl+Enter verstuurt)",
    "composer.note_placeholder": "Een notitie voor collega's… (Ctrl+Enter voegt toe)",
    "composer.from": "Gaat uit vanaf {account} op {platform}.",
    "composer.note_private": "Alleen collega's zien notities; ze gaan nooit naar buiten.",
    "composer.count_limit": "{n} / {limit}", "composer.count": "{n} tekens",
    "composer.send_reply": "Antwoord versturen", "composer.add_note": "Notitie toevoegen",
    "composer.others_typing": "{names} typt hier ook een antwoord.",
    "composer.claimed_by_other": "{name} heeft dit gesprek geclaimd; alleen die kan nu antwoorden.",
    "composer.closed": "Dit gesprek is gesloten; heropen het om te antwoorden.",

    "escalate.title": "Escaleren", "escalate.to": "Naar", "escalate.pick": "Kies een persoon of een afdeling…",
    "escalate.people": "Personen", "escalate.departments": "Afdelingen",
    "escalate.department_experts": "{name} (de experts van de afdeling)",
    "escalate.note": "Notitie", "escalate.note_hint": "Waarom, en wat je van ze nodig hebt. Alleen collega's zien dit.",
    "escalate.incomplete": "Kies wie het krijgt en schrijf een notitie.",

    "close.title": "Gesprek sluiten", "close.reason": "Reden", "close.resolved": "Opgelost",
    "close.no_reply_needed": "Geen antwoord nodig", "close.spam": "Spam",

    "dialog.cancel": "Annuleren", "dialog.close": "Sluiten",

    "done.claimed": "Geclaimd.", "done.released": "Vrijgegeven.", "done.reopened": "Heropend.",
    "done.escalated": "Geëscaleerd.", "done.closed": "Gesloten.", "done.noted": "Notitie toegevoegd.",
    "done.queued": "Antwoord in de wachtrij.", "done.sent": "Je antwoord is verstuurd.",
    "done.failed": "Je antwoord kon niet worden verstuurd.", "done.retrying": "We proberen het opnieuw.",

    "help.title": "Sneltoetsen", "help.next": "Volgende gesprek in de wachtrij", "help.previous": "Vorige gesprek",
    "help.open": "Het gekozen gesprek openen", "help.claim": "Claimen", "help.release": "Vrijgeven of teruggeven",
    "help.reply": "Een antwoord schrijven", "help.note": "Een interne notitie schrijven", "help.escalate": "Escaleren",
    "help.close": "Sluiten met een reden", "help.reopen": "Heropenen", "help.send": "Versturen wat je schreef",
    "help.search": "Zoeken in de wachtrij", "help.views": "Naar weergave 1 tot 9",
    "help.back": "Het veld verlaten, of terug naar de wachtrij", "help.help": "Dit overzicht",
    "help.more": "Sneltoetsen werken op het geopende gesprek, anders op het gekozen gesprek.",

    "role.agent": "medewerker", "role.expert": "expert", "role.coordinator": "coördinator", "role.admin": "beheerder",

    "admin.new_users": "Nieuwe gebruiker", "admin.new_departments": "Nieuwe afdeling", "admin.new_accounts": "Nieuw account",
    "admin.name": "Naam", "admin.email": "E-mailadres", "admin.role": "Rol", "admin.department": "Afdeling",
    "admin.status": "Status", "admin.actions": "Acties", "admin.active": "Actief", "admin.inactive": "Niet actief",
    "admin.edit": "Wijzigen", "admin.edit_named": "{name} wijzigen", "admin.save": "Opslaan", "admin.create": "Aanmaken",
    "admin.saved": "Opgeslagen.", "admin.created": "Aangemaakt.", "admin.no_department": "Geen afdeling",
    "admin.password": "Wachtwoord", "admin.new_password": "Nieuw wachtwoord",
    "admin.password_keep": "Laat leeg om het huidige te houden.", "admin.members": "Mensen",
    "admin.account": "Account", "admin.health": "Gezondheid", "admin.platform": "Platform", "admin.handle": "Naam op het platform",
    "admin.restricted": "afgeschermd", "admin.restricted_long": "Afgeschermd: alleen de eigen afdeling ziet het",
    "admin.settings": "Instellingen", "admin.credentials": "Inloggegevens",
    "admin.credentials_keep": "Opgeslagen en nooit getoond. Vul alleen in om ze te vervangen.",
    "admin.credentials_none": "Nog niets opgeslagen.",
    "admin.credentials_write_only": "Versleuteld opgeslagen en daarna nooit meer getoond.",

    "setting.base_url": "API-adres (base_url)", "setting.poll_interval": "Seconden tussen het ophalen",
    "setting.page_id": "Pagina-id", "setting.ig_user_id": "Instagram-gebruikers-id",
    "setting.verify_token": "Verificatietoken van de webhook", "setting.address": "E-mailadres",
    "setting.imap_host": "IMAP-server", "setting.imap_port": "IMAP-poort", "setting.smtp_host": "SMTP-server",
    "setting.smtp_port": "SMTP-poort", "setting.tls": "TLS", "setting.callback_url": "Callback-URL voor antwoorden",
    "credential.consumer_key": "Consumer key", "credential.consumer_secret": "Consumer secret",
    "credential.access_token": "Access token", "credential.access_token_secret": "Access token secret",
    "credential.page_access_token": "Pagina-access-token", "credential.app_secret": "App secret",
    "credential.username": "Gebruikersnaam", "credential.password": "Wachtwoord",
    "credential.secret": "Ondertekengeheim",

    "health.paused": "Gepauzeerd", "health.reauth": "Nieuwe inloggegevens nodig",
    "health.failing": "Mislukt ({n} keer op rij)", "health.push": "Ontvangt berichten via push",
    "health.ok": "Gezond", "health.never": "Nog niet opgehaald", "health.polled": "Laatst opgehaald {time} geleden",
    "health.error": "Laatste fout ({time} geleden):",

    "error.already_claimed": "Iemand anders heeft dit gesprek geclaimd.",
    "error.already_claimed_by": "{name} heeft dit gesprek geclaimd.",
    "error.invalid_state": "Dat kan niet in de huidige staat van dit gesprek.",
    "error.csrf": "Laad de pagina opnieuw.", "error.network": "Geen verbinding met de server.",
    "error.unknown": "Er ging iets mis.",

    "time.now": "< 1 min",
  },
};
