-- page_visitors from $first on: the rows of those days ({days}: page_visitors.sql over them),
-- each with prev_date, the visitor's previous day on the page (NULL: none). A visitor counts
-- once over a range [start, end] on the first of their days in it, the one whose prev_date is
-- before start: the range's distinct visitors of a page become a count, with no DISTINCT.
-- reads:  {days}, {table} (page_visitors as stored: the days before $first)
-- writes: _store.page_visitors, the days from $first on (storage.publish_warehouse)
WITH later AS ({days}),
keys AS (SELECT DISTINCT page_path, visitor_key FROM later),
before AS (
    SELECT p.page_path, p.visitor_key, max(p.date) AS last
    FROM {table} p SEMI JOIN keys k ON p.page_path = k.page_path
                                     AND p.visitor_key = k.visitor_key
    WHERE p.date < $first
    GROUP BY ALL
)
SELECT l.date, l.page_path, l.visitor_key, l.pageviews,
       -- no visitor (a NULL key: no visitor counted either), no previous day
       CASE WHEN l.visitor_key IS NOT NULL THEN coalesce(lag(l.date) OVER (
           PARTITION BY l.page_path, l.visitor_key ORDER BY l.date), b.last) END AS prev_date
FROM later l LEFT JOIN before b ON l.page_path = b.page_path AND l.visitor_key = b.visitor_key
ORDER BY l.date, l.page_path
