package netns

// The counter structs below name their fields exactly as the kernel names
// the keys (without the protocol prefix), so a key maps to a field by name.

// IP holds the counters of net/snmp "Ip".
// See the kernel's Documentation/networking/snmp_counter.rst for their meaning.
type IP struct {
	Forwarding, DefaultTTL, InReceives, InHdrErrors, InAddrErrors       Value
	ForwDatagrams, InUnknownProtos, InDiscards, InDelivers, OutRequests Value
	OutDiscards, OutNoRoutes, ReasmTimeout, ReasmReqds, ReasmOKs        Value
	ReasmFails, FragOKs, FragFails, FragCreates, OutTransmits           Value
}

func (s *IP) field(key []byte) *Value {
	switch string(key) {
	case "Forwarding":
		return &s.Forwarding
	case "DefaultTTL":
		return &s.DefaultTTL
	case "InReceives":
		return &s.InReceives
	case "InHdrErrors":
		return &s.InHdrErrors
	case "InAddrErrors":
		return &s.InAddrErrors
	case "ForwDatagrams":
		return &s.ForwDatagrams
	case "InUnknownProtos":
		return &s.InUnknownProtos
	case "InDiscards":
		return &s.InDiscards
	case "InDelivers":
		return &s.InDelivers
	case "OutRequests":
		return &s.OutRequests
	case "OutDiscards":
		return &s.OutDiscards
	case "OutNoRoutes":
		return &s.OutNoRoutes
	case "ReasmTimeout":
		return &s.ReasmTimeout
	case "ReasmReqds":
		return &s.ReasmReqds
	case "ReasmOKs":
		return &s.ReasmOKs
	case "ReasmFails":
		return &s.ReasmFails
	case "FragOKs":
		return &s.FragOKs
	case "FragFails":
		return &s.FragFails
	case "FragCreates":
		return &s.FragCreates
	case "OutTransmits":
		return &s.OutTransmits
	}
	return nil
}

// ICMP holds the counters of net/snmp "Icmp".
// See the kernel's Documentation/networking/snmp_counter.rst for their meaning.
type ICMP struct {
	InMsgs, InErrors, InCsumErrors, InDestUnreachs, InTimeExcds         Value
	InParmProbs, InSrcQuenchs, InRedirects, InEchos, InEchoReps         Value
	InTimestamps, InTimestampReps, InAddrMasks, InAddrMaskReps, OutMsgs Value
	OutErrors, OutRateLimitGlobal, OutRateLimitHost, OutDestUnreachs    Value
	OutTimeExcds, OutParmProbs, OutSrcQuenchs, OutRedirects, OutEchos   Value
	OutEchoReps, OutTimestamps, OutTimestampReps, OutAddrMasks          Value
	OutAddrMaskReps                                                     Value
}

func (s *ICMP) field(key []byte) *Value {
	switch string(key) {
	case "InMsgs":
		return &s.InMsgs
	case "InErrors":
		return &s.InErrors
	case "InCsumErrors":
		return &s.InCsumErrors
	case "InDestUnreachs":
		return &s.InDestUnreachs
	case "InTimeExcds":
		return &s.InTimeExcds
	case "InParmProbs":
		return &s.InParmProbs
	case "InSrcQuenchs":
		return &s.InSrcQuenchs
	case "InRedirects":
		return &s.InRedirects
	case "InEchos":
		return &s.InEchos
	case "InEchoReps":
		return &s.InEchoReps
	case "InTimestamps":
		return &s.InTimestamps
	case "InTimestampReps":
		return &s.InTimestampReps
	case "InAddrMasks":
		return &s.InAddrMasks
	case "InAddrMaskReps":
		return &s.InAddrMaskReps
	case "OutMsgs":
		return &s.OutMsgs
	case "OutErrors":
		return &s.OutErrors
	case "OutRateLimitGlobal":
		return &s.OutRateLimitGlobal
	case "OutRateLimitHost":
		return &s.OutRateLimitHost
	case "OutDestUnreachs":
		return &s.OutDestUnreachs
	case "OutTimeExcds":
		return &s.OutTimeExcds
	case "OutParmProbs":
		return &s.OutParmProbs
	case "OutSrcQuenchs":
		return &s.OutSrcQuenchs
	case "OutRedirects":
		return &s.OutRedirects
	case "OutEchos":
		return &s.OutEchos
	case "OutEchoReps":
		return &s.OutEchoReps
	case "OutTimestamps":
		return &s.OutTimestamps
	case "OutTimestampReps":
		return &s.OutTimestampReps
	case "OutAddrMasks":
		return &s.OutAddrMasks
	case "OutAddrMaskReps":
		return &s.OutAddrMaskReps
	}
	return nil
}

// TCP holds the counters of net/snmp "Tcp" (MaxConn, which the kernel prints as -1, is left out).
// See the kernel's Documentation/networking/snmp_counter.rst for their meaning.
type TCP struct {
	RtoAlgorithm, RtoMin, RtoMax, ActiveOpens, PassiveOpens, AttemptFails Value
	EstabResets, CurrEstab, InSegs, OutSegs, RetransSegs, InErrs, OutRsts Value
	InCsumErrors                                                          Value
}

func (s *TCP) field(key []byte) *Value {
	switch string(key) {
	case "RtoAlgorithm":
		return &s.RtoAlgorithm
	case "RtoMin":
		return &s.RtoMin
	case "RtoMax":
		return &s.RtoMax
	case "ActiveOpens":
		return &s.ActiveOpens
	case "PassiveOpens":
		return &s.PassiveOpens
	case "AttemptFails":
		return &s.AttemptFails
	case "EstabResets":
		return &s.EstabResets
	case "CurrEstab":
		return &s.CurrEstab
	case "InSegs":
		return &s.InSegs
	case "OutSegs":
		return &s.OutSegs
	case "RetransSegs":
		return &s.RetransSegs
	case "InErrs":
		return &s.InErrs
	case "OutRsts":
		return &s.OutRsts
	case "InCsumErrors":
		return &s.InCsumErrors
	}
	return nil
}

// UDP holds the counters of net/snmp "Udp" and, as Stats.UDP6, net/snmp6 "Udp6*".
// See the kernel's Documentation/networking/snmp_counter.rst for their meaning.
type UDP struct {
	InDatagrams, NoPorts, InErrors, OutDatagrams, RcvbufErrors Value
	SndbufErrors, InCsumErrors, IgnoredMulti, MemErrors        Value
}

func (s *UDP) field(key []byte) *Value {
	switch string(key) {
	case "InDatagrams":
		return &s.InDatagrams
	case "NoPorts":
		return &s.NoPorts
	case "InErrors":
		return &s.InErrors
	case "OutDatagrams":
		return &s.OutDatagrams
	case "RcvbufErrors":
		return &s.RcvbufErrors
	case "SndbufErrors":
		return &s.SndbufErrors
	case "InCsumErrors":
		return &s.InCsumErrors
	case "IgnoredMulti":
		return &s.IgnoredMulti
	case "MemErrors":
		return &s.MemErrors
	}
	return nil
}

// IP6 holds the counters of net/snmp6 "Ip6*".
// See the kernel's Documentation/networking/snmp_counter.rst for their meaning.
type IP6 struct {
	InReceives, InHdrErrors, InTooBigErrors, InNoRoutes, InAddrErrors     Value
	InUnknownProtos, InTruncatedPkts, InDiscards, InDelivers              Value
	OutForwDatagrams, OutRequests, OutDiscards, OutNoRoutes, ReasmTimeout Value
	ReasmReqds, ReasmOKs, ReasmFails, FragOKs, FragFails, FragCreates     Value
	InMcastPkts, OutMcastPkts, InOctets, OutOctets, InMcastOctets         Value
	OutMcastOctets, InBcastOctets, OutBcastOctets, InNoECTPkts            Value
	InECT1Pkts, InECT0Pkts, InCEPkts, OutTransmits                        Value
}

func (s *IP6) field(key []byte) *Value {
	switch string(key) {
	case "InReceives":
		return &s.InReceives
	case "InHdrErrors":
		return &s.InHdrErrors
	case "InTooBigErrors":
		return &s.InTooBigErrors
	case "InNoRoutes":
		return &s.InNoRoutes
	case "InAddrErrors":
		return &s.InAddrErrors
	case "InUnknownProtos":
		return &s.InUnknownProtos
	case "InTruncatedPkts":
		return &s.InTruncatedPkts
	case "InDiscards":
		return &s.InDiscards
	case "InDelivers":
		return &s.InDelivers
	case "OutForwDatagrams":
		return &s.OutForwDatagrams
	case "OutRequests":
		return &s.OutRequests
	case "OutDiscards":
		return &s.OutDiscards
	case "OutNoRoutes":
		return &s.OutNoRoutes
	case "ReasmTimeout":
		return &s.ReasmTimeout
	case "ReasmReqds":
		return &s.ReasmReqds
	case "ReasmOKs":
		return &s.ReasmOKs
	case "ReasmFails":
		return &s.ReasmFails
	case "FragOKs":
		return &s.FragOKs
	case "FragFails":
		return &s.FragFails
	case "FragCreates":
		return &s.FragCreates
	case "InMcastPkts":
		return &s.InMcastPkts
	case "OutMcastPkts":
		return &s.OutMcastPkts
	case "InOctets":
		return &s.InOctets
	case "OutOctets":
		return &s.OutOctets
	case "InMcastOctets":
		return &s.InMcastOctets
	case "OutMcastOctets":
		return &s.OutMcastOctets
	case "InBcastOctets":
		return &s.InBcastOctets
	case "OutBcastOctets":
		return &s.OutBcastOctets
	case "InNoECTPkts":
		return &s.InNoECTPkts
	case "InECT1Pkts":
		return &s.InECT1Pkts
	case "InECT0Pkts":
		return &s.InECT0Pkts
	case "InCEPkts":
		return &s.InCEPkts
	case "OutTransmits":
		return &s.OutTransmits
	}
	return nil
}

// ICMP6 holds the counters of net/snmp6 "Icmp6*" (the per-type Icmp6InType/OutType counters are left out).
// See the kernel's Documentation/networking/snmp_counter.rst for their meaning.
type ICMP6 struct {
	InMsgs, InErrors, OutMsgs, OutErrors, InCsumErrors, OutRateLimitHost Value
	InDestUnreachs, InPktTooBigs, InTimeExcds, InParmProblems, InEchos   Value
	InEchoReplies, InGroupMembQueries, InGroupMembResponses              Value
	InGroupMembReductions, InRouterSolicits, InRouterAdvertisements      Value
	InNeighborSolicits, InNeighborAdvertisements, InRedirects            Value
	InMLDv2Reports, OutDestUnreachs, OutPktTooBigs, OutTimeExcds         Value
	OutParmProblems, OutEchos, OutEchoReplies, OutGroupMembQueries       Value
	OutGroupMembResponses, OutGroupMembReductions, OutRouterSolicits     Value
	OutRouterAdvertisements, OutNeighborSolicits                         Value
	OutNeighborAdvertisements, OutRedirects, OutMLDv2Reports             Value
}

func (s *ICMP6) field(key []byte) *Value {
	switch string(key) {
	case "InMsgs":
		return &s.InMsgs
	case "InErrors":
		return &s.InErrors
	case "OutMsgs":
		return &s.OutMsgs
	case "OutErrors":
		return &s.OutErrors
	case "InCsumErrors":
		return &s.InCsumErrors
	case "OutRateLimitHost":
		return &s.OutRateLimitHost
	case "InDestUnreachs":
		return &s.InDestUnreachs
	case "InPktTooBigs":
		return &s.InPktTooBigs
	case "InTimeExcds":
		return &s.InTimeExcds
	case "InParmProblems":
		return &s.InParmProblems
	case "InEchos":
		return &s.InEchos
	case "InEchoReplies":
		return &s.InEchoReplies
	case "InGroupMembQueries":
		return &s.InGroupMembQueries
	case "InGroupMembResponses":
		return &s.InGroupMembResponses
	case "InGroupMembReductions":
		return &s.InGroupMembReductions
	case "InRouterSolicits":
		return &s.InRouterSolicits
	case "InRouterAdvertisements":
		return &s.InRouterAdvertisements
	case "InNeighborSolicits":
		return &s.InNeighborSolicits
	case "InNeighborAdvertisements":
		return &s.InNeighborAdvertisements
	case "InRedirects":
		return &s.InRedirects
	case "InMLDv2Reports":
		return &s.InMLDv2Reports
	case "OutDestUnreachs":
		return &s.OutDestUnreachs
	case "OutPktTooBigs":
		return &s.OutPktTooBigs
	case "OutTimeExcds":
		return &s.OutTimeExcds
	case "OutParmProblems":
		return &s.OutParmProblems
	case "OutEchos":
		return &s.OutEchos
	case "OutEchoReplies":
		return &s.OutEchoReplies
	case "OutGroupMembQueries":
		return &s.OutGroupMembQueries
	case "OutGroupMembResponses":
		return &s.OutGroupMembResponses
	case "OutGroupMembReductions":
		return &s.OutGroupMembReductions
	case "OutRouterSolicits":
		return &s.OutRouterSolicits
	case "OutRouterAdvertisements":
		return &s.OutRouterAdvertisements
	case "OutNeighborSolicits":
		return &s.OutNeighborSolicits
	case "OutNeighborAdvertisements":
		return &s.OutNeighborAdvertisements
	case "OutRedirects":
		return &s.OutRedirects
	case "OutMLDv2Reports":
		return &s.OutMLDv2Reports
	}
	return nil
}

// TCPExt holds the counters of net/netstat "TcpExt" (a selection; the rest are ignored).
// See the kernel's Documentation/networking/snmp_counter.rst for their meaning.
type TCPExt struct {
	SyncookiesSent, SyncookiesRecv, SyncookiesFailed, EmbryonicRsts       Value
	PruneCalled, RcvPruned, OfoPruned, TW, TWRecycled, TWKilled           Value
	PAWSEstab, DelayedACKs, DelayedACKLost, ListenOverflows, ListenDrops  Value
	TCPLostRetransmit, TCPFastRetrans, TCPSlowStartRetrans, TCPTimeouts   Value
	TCPLossProbes, TCPLossProbeRecovery, TCPSpuriousRTOs, TCPRetransFail  Value
	TCPSynRetrans, TCPAbortOnData, TCPAbortOnClose, TCPAbortOnMemory      Value
	TCPAbortOnTimeout, TCPAbortOnLinger, TCPAbortFailed                   Value
	TCPMemoryPressures, TCPBacklogDrop, TCPMinTTLDrop, TCPDeferAcceptDrop Value
	TCPReqQFullDoCookies, TCPReqQFullDrop, TCPRcvQDrop, TCPZeroWindowDrop Value
	TCPOFOQueue, TCPOFODrop, TCPRcvCollapsed, TCPDSACKRecv                Value
	TCPDSACKOldSent, TCPOrigDataSent, TCPDelivered, TCPKeepAlive          Value
	TCPWinProbe, TCPTimeWaitOverflow, TCPChallengeACK, TCPSYNChallenge    Value
	TCPFastOpenActive, TCPFastOpenPassive, TCPFastOpenPassiveFail         Value
	TCPFastOpenListenOverflow, TCPMTUPFail, TCPMTUPSuccess                Value
	TCPWqueueTooBig                                                       Value
}

func (s *TCPExt) field(key []byte) *Value {
	switch string(key) {
	case "SyncookiesSent":
		return &s.SyncookiesSent
	case "SyncookiesRecv":
		return &s.SyncookiesRecv
	case "SyncookiesFailed":
		return &s.SyncookiesFailed
	case "EmbryonicRsts":
		return &s.EmbryonicRsts
	case "PruneCalled":
		return &s.PruneCalled
	case "RcvPruned":
		return &s.RcvPruned
	case "OfoPruned":
		return &s.OfoPruned
	case "TW":
		return &s.TW
	case "TWRecycled":
		return &s.TWRecycled
	case "TWKilled":
		return &s.TWKilled
	case "PAWSEstab":
		return &s.PAWSEstab
	case "DelayedACKs":
		return &s.DelayedACKs
	case "DelayedACKLost":
		return &s.DelayedACKLost
	case "ListenOverflows":
		return &s.ListenOverflows
	case "ListenDrops":
		return &s.ListenDrops
	case "TCPLostRetransmit":
		return &s.TCPLostRetransmit
	case "TCPFastRetrans":
		return &s.TCPFastRetrans
	case "TCPSlowStartRetrans":
		return &s.TCPSlowStartRetrans
	case "TCPTimeouts":
		return &s.TCPTimeouts
	case "TCPLossProbes":
		return &s.TCPLossProbes
	case "TCPLossProbeRecovery":
		return &s.TCPLossProbeRecovery
	case "TCPSpuriousRTOs":
		return &s.TCPSpuriousRTOs
	case "TCPRetransFail":
		return &s.TCPRetransFail
	case "TCPSynRetrans":
		return &s.TCPSynRetrans
	case "TCPAbortOnData":
		return &s.TCPAbortOnData
	case "TCPAbortOnClose":
		return &s.TCPAbortOnClose
	case "TCPAbortOnMemory":
		return &s.TCPAbortOnMemory
	case "TCPAbortOnTimeout":
		return &s.TCPAbortOnTimeout
	case "TCPAbortOnLinger":
		return &s.TCPAbortOnLinger
	case "TCPAbortFailed":
		return &s.TCPAbortFailed
	case "TCPMemoryPressures":
		return &s.TCPMemoryPressures
	case "TCPBacklogDrop":
		return &s.TCPBacklogDrop
	case "TCPMinTTLDrop":
		return &s.TCPMinTTLDrop
	case "TCPDeferAcceptDrop":
		return &s.TCPDeferAcceptDrop
	case "TCPReqQFullDoCookies":
		return &s.TCPReqQFullDoCookies
	case "TCPReqQFullDrop":
		return &s.TCPReqQFullDrop
	case "TCPRcvQDrop":
		return &s.TCPRcvQDrop
	case "TCPZeroWindowDrop":
		return &s.TCPZeroWindowDrop
	case "TCPOFOQueue":
		return &s.TCPOFOQueue
	case "TCPOFODrop":
		return &s.TCPOFODrop
	case "TCPRcvCollapsed":
		return &s.TCPRcvCollapsed
	case "TCPDSACKRecv":
		return &s.TCPDSACKRecv
	case "TCPDSACKOldSent":
		return &s.TCPDSACKOldSent
	case "TCPOrigDataSent":
		return &s.TCPOrigDataSent
	case "TCPDelivered":
		return &s.TCPDelivered
	case "TCPKeepAlive":
		return &s.TCPKeepAlive
	case "TCPWinProbe":
		return &s.TCPWinProbe
	case "TCPTimeWaitOverflow":
		return &s.TCPTimeWaitOverflow
	case "TCPChallengeACK":
		return &s.TCPChallengeACK
	case "TCPSYNChallenge":
		return &s.TCPSYNChallenge
	case "TCPFastOpenActive":
		return &s.TCPFastOpenActive
	case "TCPFastOpenPassive":
		return &s.TCPFastOpenPassive
	case "TCPFastOpenPassiveFail":
		return &s.TCPFastOpenPassiveFail
	case "TCPFastOpenListenOverflow":
		return &s.TCPFastOpenListenOverflow
	case "TCPMTUPFail":
		return &s.TCPMTUPFail
	case "TCPMTUPSuccess":
		return &s.TCPMTUPSuccess
	case "TCPWqueueTooBig":
		return &s.TCPWqueueTooBig
	}
	return nil
}

// IPExt holds the counters of net/netstat "IpExt".
// See the kernel's Documentation/networking/snmp_counter.rst for their meaning.
type IPExt struct {
	InNoRoutes, InTruncatedPkts, InMcastPkts, OutMcastPkts, InBcastPkts  Value
	OutBcastPkts, InOctets, OutOctets, InMcastOctets, OutMcastOctets     Value
	InBcastOctets, OutBcastOctets, InCsumErrors, InNoECTPkts, InECT1Pkts Value
	InECT0Pkts, InCEPkts, ReasmOverlaps                                  Value
}

func (s *IPExt) field(key []byte) *Value {
	switch string(key) {
	case "InNoRoutes":
		return &s.InNoRoutes
	case "InTruncatedPkts":
		return &s.InTruncatedPkts
	case "InMcastPkts":
		return &s.InMcastPkts
	case "OutMcastPkts":
		return &s.OutMcastPkts
	case "InBcastPkts":
		return &s.InBcastPkts
	case "OutBcastPkts":
		return &s.OutBcastPkts
	case "InOctets":
		return &s.InOctets
	case "OutOctets":
		return &s.OutOctets
	case "InMcastOctets":
		return &s.InMcastOctets
	case "OutMcastOctets":
		return &s.OutMcastOctets
	case "InBcastOctets":
		return &s.InBcastOctets
	case "OutBcastOctets":
		return &s.OutBcastOctets
	case "InCsumErrors":
		return &s.InCsumErrors
	case "InNoECTPkts":
		return &s.InNoECTPkts
	case "InECT1Pkts":
		return &s.InECT1Pkts
	case "InECT0Pkts":
		return &s.InECT0Pkts
	case "InCEPkts":
		return &s.InCEPkts
	case "ReasmOverlaps":
		return &s.ReasmOverlaps
	}
	return nil
}
