"""The simulated site and its audience: pages, traffic sources, devices, user agents.

Each traffic source carries the attribution the simulator *intends* (``expect_source``,
``expect_medium``, ``expect_campaign``), written by hand from CONTRACT §4, so tests can check the
pipeline against it without re-using the pipeline's own referrer table.
"""

from __future__ import annotations

from dataclasses import dataclass

SITE_HOST = "www.brightpath.example"
SITE_ORIGIN = f"https://{SITE_HOST}"
EXPERIMENT = "cta_copy"
VARIANTS = ("control", "book_now")


@dataclass(frozen=True)
class Page:
    path: str
    title: str
    kind: str  # home, content, product, conversion, utility


PAGES: tuple[Page, ...] = (
    Page("/", "BrightPath — analytics consulting", "home"),
    Page("/services", "Services", "product"),
    Page("/pricing", "Pricing", "product"),
    Page("/about", "About us", "utility"),
    Page("/contact", "Contact", "utility"),
    Page("/book-a-call", "Book a call", "conversion"),
    Page("/blog", "Blog", "home"),
    Page("/blog/privacy-first-analytics", "Privacy-first analytics, explained", "content"),
    Page("/blog/cookie-banners-are-optional", "You may not need a cookie banner", "content"),
    Page("/blog/dagster-for-small-teams", "Dagster for small teams", "content"),
    Page("/blog/duckdb-vs-warehouse", "DuckDB instead of a warehouse", "content"),
    Page("/blog/utm-naming-guide", "A UTM naming guide", "content"),
    Page("/blog/funnel-analysis-101", "Funnel analysis 101", "content"),
    Page("/blog/ab-testing-pitfalls", "A/B testing pitfalls", "content"),
    Page("/blog/server-side-tracking", "Server-side tracking in 2026", "content"),
    Page("/blog/measure-content-roi", "Measuring content ROI", "content"),
    Page("/blog/retention-cohorts", "Reading a retention cohort", "content"),
    Page("/case-studies/saas-onboarding", "Case study: SaaS onboarding", "product"),
    Page("/case-studies/ecommerce-funnel", "Case study: an e-commerce funnel", "product"),
    Page("/case-studies/nonprofit-donations", "Case study: donations", "product"),
    # Broken links (issue 19): the site answers them with its 404 page, which the tracker marks
    # (`not_found`); an old post moved, a typo in a menu, a page that never existed.
    Page("/blog/analytics-2019", "Page not found", "missing"),
    Page("/servcies", "Page not found", "missing"),
    Page("/pricing/enterprise", "Page not found", "missing"),
    # Privacy traps: an address in the query string and one in the path itself.
    Page("/newsletter/confirmed?email=alex.smith@example.org#top", "Subscribed", "utility"),
    Page("/unsubscribe/jamie.doe@example.org", "Unsubscribe", "utility"),
)
PAGE_INDEX = {p.path: i for i, p in enumerate(PAGES)}
BOOK_A_CALL = PAGE_INDEX["/book-a-call"]
PRIVACY_TRAP_PAGES = (len(PAGES) - 2, len(PAGES) - 1)

# Where the next page of a visit goes (the book-a-call page is reached through the CTA).
NAV_WEIGHTS = {
    "/": 8, "/services": 18, "/pricing": 14, "/about": 7, "/contact": 5, "/blog": 6,
    "/blog/privacy-first-analytics": 4, "/blog/cookie-banners-are-optional": 3,
    "/blog/dagster-for-small-teams": 3, "/blog/duckdb-vs-warehouse": 3,
    "/blog/utm-naming-guide": 2, "/blog/funnel-analysis-101": 3, "/blog/ab-testing-pitfalls": 2,
    "/blog/server-side-tracking": 2, "/blog/measure-content-roi": 2,
    "/blog/retention-cohorts": 2, "/case-studies/saas-onboarding": 4,
    "/case-studies/ecommerce-funnel": 3, "/case-studies/nonprofit-donations": 2,
}
LANDING_WEIGHTS = {
    "home": {"/": 60, "/services": 14, "/pricing": 14, "/blog": 8, "/about": 4},
    "content": {
        "/blog/privacy-first-analytics": 16, "/blog/cookie-banners-are-optional": 12,
        "/blog/dagster-for-small-teams": 10, "/blog/duckdb-vs-warehouse": 10,
        "/blog/utm-naming-guide": 7, "/blog/funnel-analysis-101": 9,
        "/blog/ab-testing-pitfalls": 6, "/blog/server-side-tracking": 6,
        "/blog/measure-content-roi": 5, "/blog/retention-cohorts": 5, "/": 9,
        "/case-studies/saas-onboarding": 5,
    },
    "campaign": {"/services": 60, "/pricing": 25, "/": 15},
}


@dataclass(frozen=True)
class Source:
    """One way visitors arrive, with what the pipeline should attribute it to."""

    name: str
    referrer: str | None
    weight_new: float
    weight_returning: float
    landing: str  # a key of LANDING_WEIGHTS
    conversion_multiplier: float
    expect_source: str
    expect_medium: str
    expect_campaign: str = "(none)"
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_content: str | None = None
    utm_term: str | None = None


SOURCES: tuple[Source, ...] = (
    Source("direct", None, 26, 52, "home", 1.2, "(direct)", "(none)"),
    # document.referrer of the site itself (a new session opened from an old tab) is not a source.
    Source("self_referral", f"{SITE_ORIGIN}/blog/", 2, 5, "home", 1.0, "(direct)", "(none)"),
    Source("self_subdomain", "https://docs.brightpath.example/getting-started", 1, 2, "home",
           1.0, "(direct)", "(none)"),
    Source("google", "https://www.google.com/", 22, 11, "content", 0.8, "google", "organic"),
    Source("bing", "https://www.bing.com/search?q=analytics+consulting", 3, 2, "content", 0.8,
           "bing", "organic"),
    Source("duckduckgo", "https://duckduckgo.com/", 2, 1, "content", 0.8, "duckduckgo",
           "organic"),
    Source("yahoo", "https://search.yahoo.com/", 1, 0.5, "content", 0.8, "yahoo", "organic"),
    Source("linkedin", "https://www.linkedin.com/feed/", 5, 3, "content", 0.7, "linkedin",
           "social"),
    Source("twitter", "https://t.co/AbCdEf123", 3, 1, "content", 0.6, "twitter", "social"),
    Source("facebook", "https://m.facebook.com/", 2, 1, "content", 0.5, "facebook", "social"),
    Source("reddit", "https://www.reddit.com/r/dataengineering/comments/abc123/analytics/", 2,
           0.5, "content", 0.6, "reddit", "social"),
    Source("unknown_blog", "https://someblog.dev/posts/best-analytics-tools?ref=rss", 3, 1,
           "content", 1.0, "someblog.dev", "referral"),
    Source("mail_link", "https://webmail.example.net/?to=sam.lee@example.net&folder=inbox", 0.5,
           0.5, "content", 1.0, "webmail.example.net", "referral"),
    Source("newsletter", None, 6, 8, "campaign", 1.8, "newsletter", "email", "spring_launch",
           utm_source="newsletter", utm_medium="email", utm_campaign="spring_launch"),
    Source("linkedin_ads", "https://www.linkedin.com/", 5, 1, "campaign", 1.5, "linkedin", "cpc",
           "book_a_call_q1", utm_source="LinkedIn", utm_medium="CPC",
           utm_campaign="book_a_call_q1", utm_content="carousel"),
    Source("google_ads", "https://www.google.com/", 4, 2, "campaign", 1.6, "google", "cpc",
           "brand", utm_source="google", utm_medium="cpc", utm_campaign="brand",
           utm_term="analytics consulting"),
    Source("partner", "https://partner.example.com/resources", 1, 0.5, "campaign", 1.2,
           "partner_site", "(none)", "(none)", utm_source="partner_site"),
)

DEVICES = ("desktop", "mobile", "tablet")
DEVICE_WEIGHTS = (0.55, 0.39, 0.06)
DEVICE_CONVERSION = (1.0, 0.7, 0.85)

# Ordinary browsers, by device; the pipeline's user-agent library should say the same.
USER_AGENTS: dict[str, tuple[str, ...]] = {
    "desktop": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    ),
    "mobile": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    ),
    "tablet": (
        "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
    ),
}
SCREENS: dict[str, tuple[tuple[int, int], ...]] = {
    "desktop": ((1920, 1080), (1536, 864), (1440, 900), (2560, 1440), (1366, 768)),
    "mobile": ((390, 844), (393, 873), (412, 915), (360, 800)),
    "tablet": ((820, 1180), (768, 1024), (800, 1280)),
}
# Crawlers, headless browsers and HTTP libraries: the pipeline must drop all of them.
BOT_USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/131.0.0.0 Safari/537.36",
    "python-requests/2.32.3",
    "curl/8.5.0",
)

# Share of sessions starting in each UTC hour (a European and an American afternoon).
HOUR_WEIGHTS = (
    2, 1.5, 1, 1, 1, 1.5, 3, 5, 7, 8, 8, 7.5, 7, 7.5, 8, 8.5, 8, 7, 6, 5, 4.5, 4, 3.5, 2.5,
)

# Max scroll depth reached on a page (0, 25, 50, 75, 100 %), by page kind.
SCROLL_WEIGHTS = {
    "content": (0.12, 0.18, 0.2, 0.17, 0.33),
    "home": (0.2, 0.3, 0.22, 0.13, 0.15),
    "product": (0.15, 0.25, 0.25, 0.15, 0.2),
    "conversion": (0.1, 0.3, 0.3, 0.15, 0.15),
    "utility": (0.3, 0.3, 0.2, 0.1, 0.1),
    "missing": (0.7, 0.3, 0.0, 0.0, 0.0),
}
# Median seconds of visible time on a page, by kind.
DWELL_MEDIAN_S = {"content": 75.0, "home": 25.0, "product": 45.0, "conversion": 70.0,
                  "utility": 20.0, "missing": 6.0}

# --- issue 19: outbound links, downloads, broken links, web vitals, time zones -------------

MISSING_PAGES = tuple(i for i, p in enumerate(PAGES) if p.kind == "missing")
# A later page view that follows a broken link on the site, and a landing from another site's.
BROKEN_LINK_SHARE = 0.01
BROKEN_LANDING_SHARE = 0.004
# Links to other sites clicked from a page (the host only is sent), and how often.
OUTBOUND_HOSTS: tuple[str, ...] = (
    "github.com", "www.linkedin.com", "duckdb.org", "dagster.io", "web.dev", "x.com",
    "calendly.com",
)
OUTBOUND_WEIGHTS = (30, 14, 16, 12, 8, 6, 14)
OUTBOUND_RATE = {"content": 0.12, "home": 0.03, "product": 0.05, "conversion": 0.08,
                 "utility": 0.04, "missing": 0.0}
# Files offered for download: (path, extension), and how often a page's visitor takes one.
DOWNLOADS: tuple[tuple[str, str], ...] = (
    ("/files/pricing-2026.pdf", "pdf"), ("/files/analytics-checklist.pdf", "pdf"),
    ("/files/dashboard-template.xlsx", "xlsx"), ("/files/utm-builder.csv", "csv"),
    ("/files/case-study-saas.pdf", "pdf"), ("/files/starter-kit.zip", "zip"),
)
DOWNLOAD_WEIGHTS = (30, 25, 12, 10, 15, 8)
DOWNLOAD_RATE = {"content": 0.03, "home": 0.005, "product": 0.06, "conversion": 0.01,
                 "utility": 0.01, "missing": 0.0}
# Web vitals by device (desktop, mobile, tablet): medians of LCP and TTFB (ms; log-normal), INP
# (ms) and CLS. The medians sit near the Chrome UX Report's for small sites, so some pages come
# out good at p75 and some need work. Safari measures neither LCP, INP nor CLS (no
# PerformanceObserver entry types for them): its visitors send TTFB only.
VITALS_MEDIANS = {"lcp": (1700.0, 2400.0, 2100.0), "ttfb": (380.0, 620.0, 520.0),
                  "inp": (90.0, 160.0, 130.0), "cls": (0.03, 0.06, 0.05)}
VITALS_SIGMA = {"lcp": 0.45, "ttfb": 0.5, "inp": 0.6, "cls": 1.0}
# Heavier pages (big images, embeds): their LCP and CLS are worse.
SLOW_PAGES = ("/pricing", "/case-studies/ecommerce-funnel", "/blog/duckdb-vs-warehouse")
SLOW_FACTOR = 1.6

# The browser's IANA time zone (Intl.DateTimeFormat().resolvedOptions().timeZone), by share of
# visitors of an English-language consulting site with European and American customers. Names
# as browsers report them, legacy ones included (Asia/Calcutta: Chrome's ICU still says so);
# Europe/Zurich is shared by CH, DE (Büsingen) and LI, the ambiguity docs/INGEST.md measures;
# Etc/UTC (servers, privacy-hardened browsers) has no country.
TIME_ZONES: dict[str, float] = {
    "America/New_York": 14, "America/Chicago": 7, "America/Los_Angeles": 8,
    "America/Denver": 2, "America/Toronto": 3, "America/Vancouver": 1,
    "America/Sao_Paulo": 2, "America/Mexico_City": 1.5, "Europe/London": 12,
    "Europe/Berlin": 9, "Europe/Paris": 7, "Europe/Amsterdam": 4, "Europe/Madrid": 3,
    "Europe/Rome": 2.5, "Europe/Zurich": 1.5, "Europe/Stockholm": 1.5, "Europe/Warsaw": 2,
    "Europe/Dublin": 1.5, "Europe/Lisbon": 1, "Europe/Kyiv": 1, "Asia/Calcutta": 5,
    "Asia/Kolkata": 2, "Asia/Singapore": 1.5, "Asia/Tokyo": 1.5, "Asia/Dubai": 1,
    "Australia/Sydney": 2.5, "Australia/Melbourne": 1, "Pacific/Auckland": 0.7,
    "Africa/Lagos": 0.8, "Africa/Johannesburg": 0.7, "Etc/UTC": 1,
}
