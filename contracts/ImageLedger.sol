// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title ImageLedger
/// @notice Records container images by the sha256 digest of their plaintext
/// manifest, one record per (publisher, digest): what the publisher's scan
/// found, the record's status over time, who may read it, its tags, and what
/// others attest about it.
///
/// A digest belongs to nobody. Any number of publishers may record the same
/// digest, each with a record of their own; nobody can block, revoke or
/// overwrite another's. Whom to believe is the verifier's choice (its trust
/// policy), not the contract's: the contract only guarantees that a record
/// says what its publisher made it say.
///
/// Every function that changes a record names the record's publisher as its
/// first argument, and reverts NotPublisher unless the caller is that
/// publisher. The caller could have been taken as the publisher instead; an
/// explicit argument makes a call about someone else's record a refusal that
/// names both accounts, rather than a silent write to the caller's own record
/// of the same digest. Attestations and usage reports name the record they
/// are about the same way; anyone may attest, and the record's publisher or a
/// holder of a live grant may report usage. Tags are scoped per publisher: a
/// publisher's name:tag points at one of its own records.
///
/// Storage holds the fixed-size facts that this contract enforces and that a
/// verifier decides on: which records exist, the current status, grant
/// validity, tag pointers, who made each attestation and whether it was
/// taken back, and the key directory. Content identifiers (CIDs) and free
/// text travel in the events, each next to a digest that authenticates what
/// it points to. The events are the audit log: every change emits one with a
/// uniform `at` field, and wherever a record is involved, its publisher as
/// topic 1 and its digest as topic 2.
contract ImageLedger {
    enum Status {
        UNKNOWN,
        TRUSTED,
        UNTRUSTED,
        UNSUPPORTED,
        REVOKED
    }

    struct Scan {
        uint32 critical;
        uint32 high;
        uint32 medium;
        uint32 low;
        uint32 unknown;
        bool notScanned;
        bytes32 reportDigest;
        // The vulnerability database snapshot the scan used: what was known when it was shared.
        bytes32 vulndbDigest;
        string reportCid;
    }

    // Packed so that publishing writes three slots (two when unscanned) and a
    // status change one. publishedAt != 0 marks that the record exists.
    struct Record {
        uint40 publishedAt;
        Status status;
        bool notScanned;
        uint32 statusChanges;
        uint32 critical;
        uint32 high;
        uint32 medium;
        uint32 low;
        uint32 unknown;
        uint32 attestations;
        uint32 usageReports;
        bytes32 configDigest;
        bytes32 reportDigest;
    }

    struct RecordView {
        uint64 publishedAt;
        Status status;
        bytes32 configDigest;
        uint32 critical;
        uint32 high;
        uint32 medium;
        uint32 low;
        uint32 unknown;
        bool notScanned;
        bytes32 reportDigest;
        uint32 statusChanges;
        uint32 attestations;
        uint32 usageReports;
    }

    struct Grant {
        uint64 grantedAt;
        uint64 expiresAt; // 0: never
        uint64 revokedAt; // 0: not revoked
        bytes32 manifestHash;
    }

    // What revoking an attestation needs, in one slot; the rest is in its event.
    struct Attestation {
        address attester;
        uint40 at;
        uint40 revokedAt; // 0: live
    }

    struct Keys {
        bytes encryptionKey;
        bytes paillierN;
        uint64 registeredAt;
    }

    uint256 private constant MAX_KEY_BYTES = 4096;

    mapping(address publisher => mapping(bytes32 digest => Record)) private _records;
    mapping(address publisher => mapping(bytes32 digest => mapping(address recipient => Grant)))
        private _grants;
    mapping(address publisher => mapping(bytes32 digest => mapping(uint32 index => Attestation)))
        private _attestations;
    mapping(address publisher => mapping(bytes32 refHash => bytes32 digest)) private _tags;
    mapping(address account => Keys) private _keys;

    event ImagePublished(
        address indexed publisher,
        bytes32 indexed digest,
        bytes32 indexed configDigest,
        string rootCid,
        uint64 at,
        Scan scan
    );
    event StatusChanged(
        address indexed publisher,
        bytes32 indexed digest,
        Status indexed status,
        Status previous,
        string reason,
        uint64 at,
        uint32 index
    );
    event GrantAdded(
        address indexed publisher,
        bytes32 indexed digest,
        address indexed recipient,
        string manifestCid,
        bytes32 manifestHash,
        uint64 expiresAt,
        uint64 at
    );
    event GrantRevoked(
        address indexed publisher, bytes32 indexed digest, address indexed recipient, uint64 at
    );
    event Attested(
        address indexed publisher,
        bytes32 indexed digest,
        address indexed attester,
        bytes32 kind,
        bytes32 payloadHash,
        string cid,
        uint64 at,
        uint32 index
    );
    event AttestationRevoked(
        address indexed publisher,
        bytes32 indexed digest,
        address indexed attester,
        uint32 index,
        uint64 at
    );
    event TagMoved(
        address indexed publisher,
        bytes32 indexed digest,
        bytes32 indexed refHash,
        string name,
        string tag,
        bytes32 previous,
        uint64 at
    );
    event UsageReported(
        address indexed publisher,
        bytes32 indexed digest,
        address indexed reporter,
        uint64 windowStart,
        uint64 windowEnd,
        string cid,
        bytes32 blobHash,
        uint64 at,
        uint32 index
    );
    event KeysRegistered(
        address indexed account, bytes encryptionKey, bytes paillierN, uint64 at
    );

    error NotPublisher(address publisher, bytes32 digest, address caller);
    error InvalidDigest();
    error EmptyCid();
    error InvalidScan();
    error AlreadyPublished(address publisher, bytes32 digest);
    error UnknownRecord(address publisher, bytes32 digest);
    error RecordIsRevoked(address publisher, bytes32 digest);
    error InvalidStatus(uint8 status);
    error StatusUnchanged(address publisher, bytes32 digest, Status status);
    error ReasonRequired();
    error InvalidRecipient(address recipient);
    error InvalidExpiry(uint64 expiresAt, uint64 now);
    error NotGranted(address publisher, bytes32 digest, address account);
    error InvalidKind();
    error UnknownAttestation(address publisher, bytes32 digest, uint32 index);
    error NotAttester(address publisher, bytes32 digest, uint32 index, address caller);
    error AttestationAlreadyRevoked(address publisher, bytes32 digest, uint32 index);
    error InvalidTag();
    error InvalidKeys();
    error InvalidWindow(uint64 windowStart, uint64 windowEnd);
    error LengthMismatch(uint256 publishers, uint256 digests);

    modifier onlyPublisher(address publisher, bytes32 digest) {
        if (msg.sender != publisher) revert NotPublisher(publisher, digest, msg.sender);
        _;
    }

    // ---- records ------------------------------------------------------

    /// Records the publisher's image. Other publishers' records of the same
    /// digest are no obstacle and are not touched.
    function publish(
        address publisher,
        bytes32 digest,
        bytes32 configDigest,
        string calldata rootCid,
        Scan calldata scan
    ) external onlyPublisher(publisher, digest) {
        if (digest == 0 || configDigest == 0) revert InvalidDigest();
        if (bytes(rootCid).length == 0) revert EmptyCid();
        _checkScan(scan);
        Record storage r = _records[publisher][digest];
        if (r.publishedAt != 0) revert AlreadyPublished(publisher, digest);
        r.publishedAt = uint40(block.timestamp);
        r.status = Status.TRUSTED;
        r.notScanned = scan.notScanned;
        r.critical = scan.critical;
        r.high = scan.high;
        r.medium = scan.medium;
        r.low = scan.low;
        r.unknown = scan.unknown;
        r.configDigest = configDigest;
        if (scan.reportDigest != 0) r.reportDigest = scan.reportDigest;
        emit ImagePublished(
            publisher, digest, configDigest, rootCid, uint64(block.timestamp), scan
        );
    }

    /// Appends to the record's status history. REVOKED is final: revocation sticks.
    function setStatus(address publisher, bytes32 digest, uint8 status, string calldata reason)
        external
        onlyPublisher(publisher, digest)
    {
        Record storage r = _existing(publisher, digest);
        if (r.status == Status.REVOKED) revert RecordIsRevoked(publisher, digest);
        if (status == uint8(Status.UNKNOWN) || status > uint8(Status.REVOKED)) {
            revert InvalidStatus(status);
        }
        Status next = Status(status);
        if (next == r.status) revert StatusUnchanged(publisher, digest, next);
        if (bytes(reason).length == 0) revert ReasonRequired();
        Status previous = r.status;
        uint32 index = r.statusChanges + 1;
        r.status = next;
        r.statusChanges = index;
        emit StatusChanged(
            publisher, digest, next, previous, reason, uint64(block.timestamp), index
        );
    }

    // ---- grants -------------------------------------------------------

    /// Grants (or replaces the grant of) a recipient: the manifest named by
    /// manifestCid carries the recipient's wrapped keys, and hashes to manifestHash.
    function grant(
        address publisher,
        bytes32 digest,
        address recipient,
        string calldata manifestCid,
        bytes32 manifestHash,
        uint64 expiresAt
    ) external onlyPublisher(publisher, digest) {
        Record storage r = _existing(publisher, digest);
        if (r.status == Status.REVOKED) revert RecordIsRevoked(publisher, digest);
        if (recipient == address(0)) revert InvalidRecipient(recipient);
        if (bytes(manifestCid).length == 0) revert EmptyCid();
        if (manifestHash == 0) revert InvalidDigest();
        if (expiresAt != 0 && expiresAt <= block.timestamp) {
            revert InvalidExpiry(expiresAt, uint64(block.timestamp));
        }
        _grants[publisher][digest][recipient] = Grant({
            grantedAt: uint64(block.timestamp),
            expiresAt: expiresAt,
            revokedAt: 0,
            manifestHash: manifestHash
        });
        emit GrantAdded(
            publisher,
            digest,
            recipient,
            manifestCid,
            manifestHash,
            expiresAt,
            uint64(block.timestamp)
        );
    }

    /// Ends a recipient's access; possible on a revoked record too.
    function revokeGrant(address publisher, bytes32 digest, address recipient)
        external
        onlyPublisher(publisher, digest)
    {
        _existing(publisher, digest);
        Grant storage g = _grants[publisher][digest][recipient];
        if (g.grantedAt == 0 || g.revokedAt != 0) revert NotGranted(publisher, digest, recipient);
        g.revokedAt = uint64(block.timestamp);
        emit GrantRevoked(publisher, digest, recipient, uint64(block.timestamp));
    }

    // ---- attestations and usage ----------------------------------------

    /// Anyone may attest to a record: co-signers, scanners, approvers.
    function attest(
        address publisher,
        bytes32 digest,
        bytes32 kind,
        bytes32 payloadHash,
        string calldata cid
    ) external {
        Record storage r = _existing(publisher, digest);
        if (kind == 0) revert InvalidKind();
        if (payloadHash == 0) revert InvalidDigest();
        uint32 index = r.attestations + 1;
        r.attestations = index;
        _attestations[publisher][digest][index] =
            Attestation({attester: msg.sender, at: uint40(block.timestamp), revokedAt: 0});
        emit Attested(
            publisher, digest, msg.sender, kind, payloadHash, cid, uint64(block.timestamp), index
        );
    }

    /// Takes back an attestation: only its attester may, and only once.
    function revokeAttestation(address publisher, bytes32 digest, uint32 index) external {
        _existing(publisher, digest);
        Attestation storage a = _attestations[publisher][digest][index];
        if (a.attester == address(0)) revert UnknownAttestation(publisher, digest, index);
        if (a.attester != msg.sender) revert NotAttester(publisher, digest, index, msg.sender);
        if (a.revokedAt != 0) revert AttestationAlreadyRevoked(publisher, digest, index);
        a.revokedAt = uint40(block.timestamp);
        emit AttestationRevoked(publisher, digest, msg.sender, index, uint64(block.timestamp));
    }

    /// Stores a usage report (a blob of ciphertexts named by cid) for a time
    /// window: by the record's publisher or a holder of a live grant of it.
    function reportUsage(
        address publisher,
        bytes32 digest,
        uint64 windowStart,
        uint64 windowEnd,
        string calldata cid,
        bytes32 blobHash
    ) external {
        Record storage r = _existing(publisher, digest);
        if (msg.sender != publisher && !_live(_grants[publisher][digest][msg.sender])) {
            revert NotGranted(publisher, digest, msg.sender);
        }
        if (windowStart >= windowEnd) revert InvalidWindow(windowStart, windowEnd);
        if (bytes(cid).length == 0) revert EmptyCid();
        if (blobHash == 0) revert InvalidDigest();
        uint32 index = r.usageReports + 1;
        r.usageReports = index;
        emit UsageReported(
            publisher,
            digest,
            msg.sender,
            windowStart,
            windowEnd,
            cid,
            blobHash,
            uint64(block.timestamp),
            index
        );
    }

    // ---- tags -----------------------------------------------------------

    /// Points the publisher's name:tag at one of its own records. Names belong
    /// to nobody: another publisher's name:tag of the same name is its own.
    function setTag(address publisher, string calldata name, string calldata tag, bytes32 digest)
        external
        onlyPublisher(publisher, digest)
    {
        Record storage r = _existing(publisher, digest);
        if (r.status == Status.REVOKED) revert RecordIsRevoked(publisher, digest);
        if (bytes(name).length == 0 || bytes(tag).length == 0) revert InvalidTag();
        bytes32 ref = tagRef(name, tag);
        bytes32 previous = _tags[publisher][ref];
        _tags[publisher][ref] = digest;
        emit TagMoved(publisher, digest, ref, name, tag, previous, uint64(block.timestamp));
    }

    // ---- batches ----------------------------------------------------------

    /// Several calls of this contract in one transaction, each as the caller,
    /// all or none: a publish with its grants and tag takes one signature and
    /// one block instead of four. A failing call's own error is re-raised.
    function multicall(bytes[] calldata calls) external {
        for (uint256 i = 0; i < calls.length; i++) {
            (bool ok, bytes memory result) = address(this).delegatecall(calls[i]);
            if (!ok) {
                assembly {
                    revert(add(result, 32), mload(result))
                }
            }
        }
    }

    // ---- key directory ----------------------------------------------------

    function registerKeys(bytes calldata encryptionKey, bytes calldata paillierN) external {
        if (
            encryptionKey.length == 0 || paillierN.length == 0
                || encryptionKey.length > MAX_KEY_BYTES || paillierN.length > MAX_KEY_BYTES
        ) revert InvalidKeys();
        _keys[msg.sender] = Keys(encryptionKey, paillierN, uint64(block.timestamp));
        emit KeysRegistered(msg.sender, encryptionKey, paillierN, uint64(block.timestamp));
    }

    // ---- reads --------------------------------------------------------------

    /// One publisher's record of a digest; publishedAt 0 (and status UNKNOWN)
    /// where that publisher never recorded it.
    function record(address publisher, bytes32 digest)
        public
        view
        returns (RecordView memory v)
    {
        Record storage r = _records[publisher][digest];
        v.publishedAt = r.publishedAt;
        v.status = r.status;
        v.configDigest = r.configDigest;
        v.critical = r.critical;
        v.high = r.high;
        v.medium = r.medium;
        v.low = r.low;
        v.unknown = r.unknown;
        v.notScanned = r.notScanned;
        v.reportDigest = r.reportDigest;
        v.statusChanges = r.statusChanges;
        v.attestations = r.attestations;
        v.usageReports = r.usageReports;
    }

    /// Many records in one call, for listings: publishers[i]'s record of digests[i].
    function recordsOf(address[] calldata publishers, bytes32[] calldata digests)
        external
        view
        returns (RecordView[] memory out)
    {
        if (publishers.length != digests.length) {
            revert LengthMismatch(publishers.length, digests.length);
        }
        out = new RecordView[](digests.length);
        for (uint256 i = 0; i < digests.length; ++i) {
            out[i] = record(publishers[i], digests[i]);
        }
    }

    function statusOf(address publisher, bytes32 digest) external view returns (Status) {
        return _records[publisher][digest].status;
    }

    function grantOf(address publisher, bytes32 digest, address recipient)
        external
        view
        returns (Grant memory)
    {
        return _grants[publisher][digest][recipient];
    }

    /// False for a grant that never was, was revoked, or has expired.
    function isGranted(address publisher, bytes32 digest, address recipient)
        external
        view
        returns (bool)
    {
        return _live(_grants[publisher][digest][recipient]);
    }

    function resolve(address publisher, string calldata name, string calldata tag)
        external
        view
        returns (bytes32)
    {
        return _tags[publisher][tagRef(name, tag)];
    }

    /// Who made attestation ``index`` of a record, when, and when it was taken
    /// back (0: live); attester 0 where there is no such attestation.
    function attestationOf(address publisher, bytes32 digest, uint32 index)
        external
        view
        returns (address attester, uint64 at, uint64 revokedAt)
    {
        Attestation storage a = _attestations[publisher][digest][index];
        return (a.attester, a.at, a.revokedAt);
    }

    function keysOf(address account)
        external
        view
        returns (bytes memory encryptionKey, bytes memory paillierN, uint64 registeredAt)
    {
        Keys storage k = _keys[account];
        return (k.encryptionKey, k.paillierN, k.registeredAt);
    }

    /// The key under which name:tag is stored; abi.encode keeps "a:b" + "c"
    /// apart from "a" + "b:c".
    function tagRef(string calldata name, string calldata tag) public pure returns (bytes32) {
        return keccak256(abi.encode(name, tag));
    }

    // ---- internals -------------------------------------------------------

    function _existing(address publisher, bytes32 digest)
        private
        view
        returns (Record storage r)
    {
        r = _records[publisher][digest];
        if (r.publishedAt == 0) revert UnknownRecord(publisher, digest);
    }

    function _live(Grant storage g) private view returns (bool) {
        return g.grantedAt != 0 && g.revokedAt == 0
            && (g.expiresAt == 0 || block.timestamp < g.expiresAt);
    }

    function _checkScan(Scan calldata scan) private pure {
        bool empty = scan.critical == 0 && scan.high == 0 && scan.medium == 0 && scan.low == 0
            && scan.unknown == 0 && scan.reportDigest == 0 && scan.vulndbDigest == 0
            && bytes(scan.reportCid).length == 0;
        bool incomplete = scan.reportDigest == 0 || scan.vulndbDigest == 0
            || bytes(scan.reportCid).length == 0;
        if (scan.notScanned ? !empty : incomplete) {
            revert InvalidScan();
        }
    }
}
