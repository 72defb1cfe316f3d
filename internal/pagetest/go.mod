module github.com/metricsd/metricsd/internal/pagetest

go 1.26.0

require (
	github.com/chromedp/chromedp v0.23.0
	github.com/metricsd/metricsd v0.0.0
)

require (
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/metricsd/metricsd => ../../
