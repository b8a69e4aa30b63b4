package structs

// The request and response bodies of the HTTP API that are not resources
// themselves. Shapes and field names follow Nomad's /v1 API.

// QueryMeta travels in bodies that Nomad embeds it in; the same values are
// sent as X-Nomad-Index, X-Nomad-KnownLeader and X-Nomad-LastContact headers.
type QueryMeta struct {
	Index       uint64
	LastContact int64 // nanoseconds, as Nomad encodes time.Duration
	KnownLeader bool
	NextToken   string `json:",omitempty"`
}

// JobRegisterRequest is the body of PUT/POST /v1/jobs and /v1/job/:id.
type JobRegisterRequest struct {
	Job            *Job
	EnforceIndex   bool   `json:",omitempty"`
	JobModifyIndex uint64 `json:",omitempty"`
	PolicyOverride bool   `json:",omitempty"`
	PreserveCounts bool   `json:",omitempty"`
	EvalPriority   int    `json:",omitempty"`
	Namespace      string `json:",omitempty"`
	Region         string `json:",omitempty"`
}

// JobRegisterResponse answers a job registration.
type JobRegisterResponse struct {
	EvalID          string
	EvalCreateIndex uint64
	JobModifyIndex  uint64
	Warnings        string
	QueryMeta
}

// JobDeregisterResponse answers DELETE /v1/job/:id.
type JobDeregisterResponse struct {
	EvalID          string
	EvalCreateIndex uint64
	JobModifyIndex  uint64
	QueryMeta
}

// JobListStub is the short form returned by GET /v1/jobs.
type JobListStub struct {
	ID                string
	ParentID          string
	Name              string
	Namespace         string `json:",omitempty"`
	Datacenters       []string
	NodePool          string
	Type              string
	Priority          int
	Periodic          bool
	ParameterizedJob  bool
	Stop              bool
	Status            string
	StatusDescription string
	JobSummary        *JobSummary
	CreateIndex       uint64
	ModifyIndex       uint64
	JobModifyIndex    uint64
	SubmitTime        int64
	Meta              map[string]string `json:",omitempty"`
}

// JobSummary counts a job's allocations by state, per task group.
type JobSummary struct {
	JobID       string
	Namespace   string
	Summary     map[string]TaskGroupSummary
	Children    *JobChildrenSummary
	CreateIndex uint64
	ModifyIndex uint64
}

// TaskGroupSummary counts one group's allocations by state.
type TaskGroupSummary struct {
	Queued   int
	Complete int
	Failed   int
	Running  int
	Starting int
	Lost     int
	Unknown  int
}

// JobChildrenSummary counts the children of periodic and parameterized jobs.
type JobChildrenSummary struct {
	Pending int64
	Running int64
	Dead    int64
}

// RaftServer is one peer in the Raft configuration.
type RaftServer struct {
	ID           string
	Node         string
	Address      string
	Leader       bool
	Voter        bool
	RaftProtocol string
}

// RaftConfiguration answers GET /v1/operator/raft/configuration.
type RaftConfiguration struct {
	Servers []*RaftServer
	Index   uint64
}

// ServerMembers answers GET /v1/agent/members.
type ServerMembers struct {
	ServerName   string
	ServerRegion string
	ServerDC     string
	Members      []*AgentMember
}

// AgentMember is one member of the gossip pool.
type AgentMember struct {
	Name        string
	Addr        string
	Port        uint16
	Tags        map[string]string
	Status      string
	ProtocolMin uint8
	ProtocolMax uint8
	ProtocolCur uint8
	DelegateMin uint8
	DelegateMax uint8
	DelegateCur uint8
}

// AgentSelf answers GET /v1/agent/self.
type AgentSelf struct {
	Config map[string]any               `json:"config"`
	Member AgentMember                  `json:"member"`
	Stats  map[string]map[string]string `json:"stats"`
}

// AgentHealthResponse answers GET /v1/agent/health.
type AgentHealthResponse struct {
	Client *AgentHealth `json:"client,omitempty"`
	Server *AgentHealth `json:"server,omitempty"`
}

// AgentHealth is one side's health.
type AgentHealth struct {
	Ok      bool   `json:"ok"`
	Message string `json:"message"`
}
