// Package api is berth's Go client of its HTTP API. The API follows Nomad's
// /v1 wire format, and so does this client: paths, query parameters, headers
// and JSON bodies are Nomad's. Unlike Nomad's api package, it returns the
// domain types of package structs.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultAddress is where the client looks for an agent when neither the
// configuration nor the environment says otherwise.
const DefaultAddress = "http://127.0.0.1:4646"

// Environment variables read by DefaultConfig. The BERTH_ variable wins over
// its NOMAD_ twin, so a shell set up for Nomad works unchanged.
const (
	EnvAddress   = "BERTH_ADDR"
	EnvToken     = "BERTH_TOKEN"
	EnvRegion    = "BERTH_REGION"
	EnvNamespace = "BERTH_NAMESPACE"

	EnvNomadAddress   = "NOMAD_ADDR"
	EnvNomadToken     = "NOMAD_TOKEN"
	EnvNomadRegion    = "NOMAD_REGION"
	EnvNomadNamespace = "NOMAD_NAMESPACE"
)

// HTTP headers of the wire format.
const (
	HeaderToken       = "X-Nomad-Token"
	HeaderIndex       = "X-Nomad-Index"
	HeaderKnownLeader = "X-Nomad-KnownLeader"
	HeaderLastContact = "X-Nomad-LastContact"
)

// DefaultTimeout bounds a request that is not a blocking query. A blocking
// query gets its wait time (plus the server's jitter of wait/16) on top.
const DefaultTimeout = 60 * time.Second

// defaultBlockingWait is what the server waits when a query gives an index
// but no wait time (Nomad's default).
const defaultBlockingWait = 5 * time.Minute

// maxErrorBody bounds how much of an error response is kept as its message.
const maxErrorBody = 64 << 10

// Config configures a Client.
type Config struct {
	// Address is the agent's base URL, e.g. http://127.0.0.1:4646. A bare
	// host:port gets http:// in front.
	Address string
	// Region and Namespace are the defaults for requests whose options do
	// not name one; empty means the server's default.
	Region    string
	Namespace string
	// Token is sent as X-Nomad-Token unless a request's options carry one.
	Token string
	// HTTPClient, when set, is used as is (its Timeout included). When nil
	// the client builds one without an overall timeout and bounds each
	// request by Timeout instead, so blocking queries are not cut short.
	HTTPClient *http.Client
	// Timeout bounds each non-blocking request; 0 means DefaultTimeout.
	Timeout time.Duration
}

// DefaultConfig returns the configuration taken from the environment
// (BERTH_ADDR, then NOMAD_ADDR, and likewise for the token, region and
// namespace) on top of the defaults.
func DefaultConfig() *Config {
	return &Config{
		Address:   firstEnv(EnvAddress, EnvNomadAddress, DefaultAddress),
		Token:     firstEnv(EnvToken, EnvNomadToken, ""),
		Region:    firstEnv(EnvRegion, EnvNomadRegion, ""),
		Namespace: firstEnv(EnvNamespace, EnvNomadNamespace, ""),
		Timeout:   DefaultTimeout,
	}
}

func firstEnv(primary, secondary, def string) string {
	if v := os.Getenv(primary); v != "" {
		return v
	}
	if v := os.Getenv(secondary); v != "" {
		return v
	}
	return def
}

// Client talks to one berth (or Nomad) agent's HTTP API.
type Client struct {
	config  Config
	baseURL *url.URL
	http    *http.Client
}

// NewClient returns a client for cfg; a nil cfg means DefaultConfig().
func NewClient(cfg *Config) (*Client, error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	c := &Client{config: *cfg}
	if c.config.Address == "" {
		c.config.Address = DefaultAddress
	}
	if c.config.Timeout <= 0 {
		c.config.Timeout = DefaultTimeout
	}
	u, err := parseAddress(c.config.Address)
	if err != nil {
		return nil, err
	}
	c.baseURL = u
	c.http = c.config.HTTPClient
	if c.http == nil {
		c.http = &http.Client{Transport: defaultTransport()}
	}
	return c, nil
}

func parseAddress(addr string) (*url.URL, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("invalid address %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid address %q: scheme must be http or https", addr)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid address %q: no host", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

func defaultTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// Address returns the base URL the client talks to.
func (c *Client) Address() string { return c.baseURL.String() }

// QueryOptions are the parameters of a read.
type QueryOptions struct {
	// Region and Namespace override the client's; Namespace "*" lists
	// across all namespaces.
	Region    string
	Namespace string
	// AllowStale lets any server answer from its own state, without going
	// through the leader.
	AllowStale bool
	// WaitIndex makes the query blocking: the server answers once the
	// result's index is above WaitIndex, or after WaitTime.
	WaitIndex uint64
	WaitTime  time.Duration
	// Prefix filters lists by ID prefix.
	Prefix string
	// Params are extra query parameters.
	Params map[string]string
	// AuthToken overrides the client's token.
	AuthToken string

	ctx context.Context
}

// WithContext returns a copy of the options whose requests are bound to ctx.
func (q *QueryOptions) WithContext(ctx context.Context) *QueryOptions {
	var c QueryOptions
	if q != nil {
		c = *q
	}
	c.ctx = ctx
	return &c
}

// WriteOptions are the parameters of a write.
type WriteOptions struct {
	Region    string
	Namespace string
	AuthToken string

	ctx context.Context
}

// WithContext returns a copy of the options whose requests are bound to ctx.
func (w *WriteOptions) WithContext(ctx context.Context) *WriteOptions {
	var c WriteOptions
	if w != nil {
		c = *w
	}
	c.ctx = ctx
	return &c
}

// QueryMeta is what the server says about a read, from its response headers.
type QueryMeta struct {
	// LastIndex is X-Nomad-Index: pass it as WaitIndex to block for changes.
	LastIndex uint64
	// LastContact is how long ago the answering server heard from the leader.
	LastContact time.Duration
	// KnownLeader reports whether the answering server knows a leader.
	KnownLeader bool
	// RequestTime is how long the request took.
	RequestTime time.Duration
}

// WriteMeta is what the server says about a write.
type WriteMeta struct {
	LastIndex   uint64
	RequestTime time.Duration
}

// request is one HTTP call being built.
type request struct {
	method string
	path   string
	params url.Values
	token  string
	body   any
	ctx    context.Context
	// wait is how long the server may hold a blocking query.
	wait time.Duration
	// header holds extra request headers (the node secret).
	header http.Header
}

func (c *Client) newRequest(method, path string) *request {
	r := &request{
		method: method,
		path:   path,
		params: url.Values{},
		token:  c.config.Token,
		ctx:    context.Background(),
	}
	if c.config.Region != "" {
		r.params.Set("region", c.config.Region)
	}
	if c.config.Namespace != "" {
		r.params.Set("namespace", c.config.Namespace)
	}
	return r
}

func (r *request) setQueryOptions(q *QueryOptions) {
	if q == nil {
		return
	}
	if q.Region != "" {
		r.params.Set("region", q.Region)
	}
	if q.Namespace != "" {
		r.params.Set("namespace", q.Namespace)
	}
	if q.AuthToken != "" {
		r.token = q.AuthToken
	}
	if q.AllowStale {
		r.params.Set("stale", "")
	}
	if q.WaitIndex != 0 {
		r.params.Set("index", strconv.FormatUint(q.WaitIndex, 10))
		r.wait = defaultBlockingWait
	}
	if q.WaitTime != 0 {
		r.params.Set("wait", durToMsec(q.WaitTime))
		r.wait = q.WaitTime
	}
	if q.Prefix != "" {
		r.params.Set("prefix", q.Prefix)
	}
	for k, v := range q.Params {
		r.params.Set(k, v)
	}
	if q.ctx != nil {
		r.ctx = q.ctx
	}
}

func (r *request) setWriteOptions(w *WriteOptions) {
	if w == nil {
		return
	}
	if w.Region != "" {
		r.params.Set("region", w.Region)
	}
	if w.Namespace != "" {
		r.params.Set("namespace", w.Namespace)
	}
	if w.AuthToken != "" {
		r.token = w.AuthToken
	}
	if w.ctx != nil {
		r.ctx = w.ctx
	}
}

// durToMsec encodes a wait time the way Nomad's client does ("5000ms"),
// which every Nomad-format server parses.
func durToMsec(d time.Duration) string {
	ms := d.Milliseconds()
	if d > 0 && ms == 0 {
		ms = 1
	}
	return fmt.Sprintf("%dms", ms)
}

// do sends r. On a 2xx answer it returns the open response; otherwise it
// returns a *StatusError carrying the server's message.
func (c *Client) do(r *request) (*http.Response, time.Duration, context.CancelFunc, error) {
	// r.path is already escaped (see pathEscape), so the URL is assembled
	// as text rather than through url.URL.Path, which would escape it again.
	target := c.baseURL.String() + r.path
	if q := r.params.Encode(); q != "" {
		target += "?" + q
	}

	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("encode request body: %w", err)
		}
		body = bytes.NewReader(b)
	}

	timeout := c.config.Timeout
	if r.wait > 0 {
		timeout += r.wait + r.wait/16
	}
	ctx, cancel := context.WithTimeout(r.ctx, timeout)

	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		cancel()
		return nil, 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		req.Header.Set(HeaderToken, r.token)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}

	start := time.Now()
	resp, err := c.http.Do(req)
	rtt := time.Since(start)
	if err != nil {
		cancel()
		return nil, rtt, nil, err // a *url.Error: names the method and URL
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer cancel()
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, rtt, nil, &StatusError{
			Code:    resp.StatusCode,
			Message: strings.TrimSpace(string(msg)),
			Method:  r.method,
			Path:    r.path,
		}
	}
	return resp, rtt, cancel, nil
}

// call sends r and decodes a JSON body into out (when out is not nil).
func (c *Client) call(r *request, out any) (http.Header, time.Duration, error) {
	resp, rtt, cancel, err := c.do(r)
	if err != nil {
		return nil, rtt, err
	}
	defer cancel()
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Header, rtt, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.Header, rtt, fmt.Errorf("%s %s: decode response: %w", r.method, r.path, err)
	}
	// Drain what the decoder left (a trailing newline) so that the
	// keep-alive connection goes back to the pool.
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Header, rtt, nil
}

func (c *Client) query(path string, out any, q *QueryOptions) (*QueryMeta, error) {
	r := c.newRequest(http.MethodGet, path)
	r.setQueryOptions(q)
	h, rtt, err := c.call(r, out)
	if err != nil {
		return nil, err
	}
	qm := parseQueryMeta(h)
	qm.RequestTime = rtt
	return qm, nil
}

func (c *Client) write(method, path string, params url.Values, in, out any, w *WriteOptions) (*WriteMeta, error) {
	r := c.newRequest(method, path)
	r.setWriteOptions(w)
	for k, vs := range params {
		r.params[k] = vs
	}
	r.body = in
	h, rtt, err := c.call(r, out)
	if err != nil {
		return nil, err
	}
	idx, _ := strconv.ParseUint(h.Get(HeaderIndex), 10, 64)
	return &WriteMeta{LastIndex: idx, RequestTime: rtt}, nil
}

func parseQueryMeta(h http.Header) *QueryMeta {
	qm := &QueryMeta{}
	qm.LastIndex, _ = strconv.ParseUint(h.Get(HeaderIndex), 10, 64)
	if ms, err := strconv.ParseUint(h.Get(HeaderLastContact), 10, 64); err == nil {
		qm.LastContact = time.Duration(ms) * time.Millisecond
	}
	qm.KnownLeader = h.Get(HeaderKnownLeader) == "true"
	return qm
}

// StatusError is a non-2xx answer from the server.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Message is the server's plain-text explanation.
	Message string
	// Method and Path say which request failed.
	Method string
	Path   string
}

func (e *StatusError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Code)
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, e.Code)
}

// StatusCode returns the HTTP status code carried by err, or 0 when err is
// not (and does not wrap) a *StatusError.
func StatusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// IsNotFound reports whether the server answered 404.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// IsBadRequest reports whether the server rejected the request as invalid (400).
func IsBadRequest(err error) bool { return StatusCode(err) == http.StatusBadRequest }

// IsForbidden reports whether the server denied the request (403).
func IsForbidden(err error) bool { return StatusCode(err) == http.StatusForbidden }

// IsConflict reports a 409, e.g. a failed check-and-set.
func IsConflict(err error) bool { return StatusCode(err) == http.StatusConflict }

// IsServerError reports a 5xx.
func IsServerError(err error) bool { return StatusCode(err) >= 500 }

// pathEscape escapes one path segment (a job ID may contain '/').
func pathEscape(s string) string { return url.PathEscape(s) }
