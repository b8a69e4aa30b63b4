package structs

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Service providers.
const (
	ServiceProviderConsul = "consul"
	ServiceProviderNomad  = "nomad"
)

// Service and check address modes.
const (
	AddressModeAuto   = "auto"
	AddressModeHost   = "host"
	AddressModeDriver = "driver"
	AddressModeAlloc  = "alloc"
)

// Service check types.
const (
	ServiceCheckHTTP   = "http"
	ServiceCheckTCP    = "tcp"
	ServiceCheckScript = "script"
	ServiceCheckGRPC   = "grpc"
)

// on_update values of services and checks.
const (
	OnUpdateRequireHealthy = "require_healthy"
	OnUpdateIgnoreWarn     = "ignore_warnings"
	OnUpdateIgnore         = "ignore"
)

// DefaultCheckRestartGrace is check_restart.grace when not given.
const DefaultCheckRestartGrace = time.Second

// Service is a service block: a name under which the allocation's tasks are
// registered, with health checks.
type Service struct {
	Name              string
	TaskName          string // the task a group service's script checks run in
	PortLabel         string // a port label, or a number
	AddressMode       string
	Address           string
	Tags              []string
	CanaryTags        []string
	EnableTagOverride bool
	Checks            []*ServiceCheck
	CheckRestart      *CheckRestart
	Connect           map[string]any // Consul Connect: accepted, stored, not acted on
	Meta              map[string]string
	CanaryMeta        map[string]string
	TaggedAddresses   map[string]string
	OnUpdate          string
	Identity          *WorkloadIdentity
	Weights           *ServiceWeights
	Provider          string
	Cluster           string
	Kind              string
}

// ServiceCheck is a check block of a service.
type ServiceCheck struct {
	Name                   string
	Type                   string
	Command                string
	Args                   []string
	Path                   string
	Protocol               string
	PortLabel              string
	Expose                 bool
	AddressMode            string
	Advertise              string
	Interval               time.Duration
	Timeout                time.Duration
	InitialStatus          string
	Notes                  string
	TLSServerName          string
	TLSSkipVerify          bool
	Header                 map[string][]string
	Method                 string
	CheckRestart           *CheckRestart
	GRPCService            string
	GRPCUseTLS             bool
	TaskName               string
	SuccessBeforePassing   int
	FailuresBeforeCritical int
	FailuresBeforeWarning  int
	Body                   string
	OnUpdate               string
}

// CheckRestart restarts a task whose check stays unhealthy.
type CheckRestart struct {
	Limit          int
	Grace          time.Duration
	IgnoreWarnings bool
}

// UnmarshalJSON gives Grace its Nomad default of 1s when missing or null.
func (c *CheckRestart) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	type alias CheckRestart
	a := (*alias)(c)
	a.Grace = DefaultCheckRestartGrace
	return json.Unmarshal(data, a)
}

// ServiceWeights are the DNS SRV weights of passing and warning instances.
type ServiceWeights struct {
	Passing int
	Warning int
}

// Copy returns a deep copy.
func (s *Service) Copy() *Service {
	if s == nil {
		return nil
	}
	c := *s
	c.Tags = slices.Clone(s.Tags)
	c.CanaryTags = slices.Clone(s.CanaryTags)
	c.Checks = copyPtrs(s.Checks, (*ServiceCheck).Copy)
	c.CheckRestart = copyPtr(s.CheckRestart)
	c.Connect = copyAnyMap(s.Connect)
	c.Meta = copyStringMap(s.Meta)
	c.CanaryMeta = copyStringMap(s.CanaryMeta)
	c.TaggedAddresses = copyStringMap(s.TaggedAddresses)
	c.Identity = s.Identity.Copy()
	c.Weights = copyPtr(s.Weights)
	return &c
}

// Copy returns a deep copy.
func (c *ServiceCheck) Copy() *ServiceCheck {
	if c == nil {
		return nil
	}
	n := *c
	n.Args = slices.Clone(c.Args)
	if c.Header != nil {
		n.Header = make(map[string][]string, len(c.Header))
		for k, v := range c.Header {
			n.Header[k] = slices.Clone(v)
		}
	}
	n.CheckRestart = copyPtr(c.CheckRestart)
	return &n
}

// Minimum check interval and timeout, as Nomad's.
const (
	MinCheckInterval = time.Second
	MinCheckTimeout  = time.Second
)

var validServiceName = regexp.MustCompile(`^(?i:[a-z0-9]|[a-z0-9][a-z0-9\-]{0,61}[a-z0-9])$`)

// validateService checks one service block; ports holds the port labels the
// group defines.
func validateService(s *Service, p problems, ports map[string]bool) {
	if s.Name == "" {
		p.addf("missing service name")
	} else if !strings.Contains(s.Name, "${") && !validServiceName.MatchString(s.Name) {
		p.addf("service name %q must be valid per RFC 1123: letters, digits and dashes, at most 63 characters", s.Name)
	}
	switch s.Provider {
	case ServiceProviderConsul, ServiceProviderNomad, "":
	default:
		p.addf("invalid service provider %q, must be %q or %q", s.Provider, ServiceProviderConsul, ServiceProviderNomad)
	}
	switch s.AddressMode {
	case "", AddressModeAuto, AddressModeHost, AddressModeDriver, AddressModeAlloc:
	default:
		p.addf("invalid service address_mode %q", s.AddressMode)
	}
	validateOnUpdate(s.OnUpdate, p)
	checkPortLabel(s.PortLabel, p, ports)
	if s.CheckRestart != nil {
		validateCheckRestart(s.CheckRestart, p)
	}
	for i, c := range s.Checks {
		if c == nil {
			continue
		}
		cp := p.in("check %q", c.Name)
		if c.Name == "" {
			cp = p.in("check %d", i)
		}
		validateCheck(c, s.Provider, cp, ports)
	}
}

func validateCheck(c *ServiceCheck, provider string, p problems, ports map[string]bool) {
	switch c.Type {
	case ServiceCheckHTTP:
		if c.Path == "" {
			p.addf("http check requires a path")
		}
	case ServiceCheckTCP, ServiceCheckGRPC:
	case ServiceCheckScript:
		if c.Command == "" {
			p.addf("script check requires a command")
		}
	default:
		p.addf("invalid check type %q, must be http, tcp, grpc or script", c.Type)
	}
	if provider == ServiceProviderNomad && c.Type != ServiceCheckHTTP && c.Type != ServiceCheckTCP {
		p.addf("check type %q is not supported by the nomad service provider", c.Type)
	}
	if c.Interval < MinCheckInterval {
		p.addf("check interval (%v) cannot be lower than %v", c.Interval, MinCheckInterval)
	}
	if c.Timeout < MinCheckTimeout {
		p.addf("check timeout (%v) cannot be lower than %v", c.Timeout, MinCheckTimeout)
	}
	switch c.InitialStatus {
	case "", "passing", "warning", "critical":
	default:
		p.addf("invalid check initial_status %q", c.InitialStatus)
	}
	switch c.AddressMode {
	case "", AddressModeHost, AddressModeDriver, AddressModeAlloc:
	default:
		p.addf("invalid check address_mode %q", c.AddressMode)
	}
	validateOnUpdate(c.OnUpdate, p)
	checkPortLabel(c.PortLabel, p, ports)
	if c.CheckRestart != nil {
		validateCheckRestart(c.CheckRestart, p)
	}
}

func validateCheckRestart(c *CheckRestart, p problems) {
	if c.Limit < 0 {
		p.addf("check_restart limit must not be negative, got %d", c.Limit)
	}
	if c.Grace < 0 {
		p.addf("check_restart grace must not be negative, got %v", c.Grace)
	}
}

func validateOnUpdate(v string, p problems) {
	switch v {
	case "", OnUpdateRequireHealthy, OnUpdateIgnoreWarn, OnUpdateIgnore:
	default:
		p.addf("invalid on_update %q", v)
	}
}

// checkPortLabel accepts an empty label, a number, an interpolation, or a
// label defined by the group's networks.
func checkPortLabel(label string, p problems, ports map[string]bool) {
	if label == "" || strings.Contains(label, "${") || ports[label] {
		return
	}
	if n, err := strconv.Atoi(label); err == nil {
		if n < 1 || n > MaxValidPort {
			p.addf("port %d out of range 1..%d", n, MaxValidPort)
		}
		return
	}
	p.addf("port label %q is not defined by any network of the group", label)
}
