// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title ImageLedger
/// @notice Records container images by the sha256 digest of their plaintext
/// manifest: who published them, what their scan found, their status over
/// time, who may read them, and what others attest about them.
///
/// Storage holds the fixed-size facts that this contract enforces and that a
/// verifier decides on: owners, digests, the current status, grant validity,
/// tag pointers and the key directory. Content identifiers (CIDs) and free
/// text travel in the events, each next to a digest that authenticates what
/// it points to. The events are the audit log: every change emits one, with
/// the image digest as the first indexed topic wherever an image is involved.
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

    // Packed so that publishing writes four slots and a status change one.
    struct Image {
        address owner;
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

    struct ImageView {
        address owner;
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

    struct Keys {
        bytes encryptionKey;
        bytes paillierN;
        uint64 registeredAt;
    }

    uint256 private constant MAX_KEY_BYTES = 4096;

    mapping(bytes32 digest => Image) private _images;
    mapping(bytes32 digest => mapping(address recipient => Grant)) private _grants;
    mapping(bytes32 nameHash => address) private _nameOwners;
    mapping(bytes32 refHash => bytes32 digest) private _tags;
    mapping(address account => Keys) private _keys;

    event ImagePublished(
        bytes32 indexed digest,
        address indexed owner,
        bytes32 indexed configDigest,
        string rootCid,
        uint64 publishedAt,
        Scan scan
    );
    event StatusChanged(
        bytes32 indexed digest,
        address indexed by,
        Status indexed status,
        Status previous,
        string reason,
        uint64 at,
        uint32 index
    );
    event GrantAdded(
        bytes32 indexed digest,
        address indexed recipient,
        address indexed by,
        string manifestCid,
        bytes32 manifestHash,
        uint64 expiresAt,
        uint64 grantedAt
    );
    event GrantRevoked(
        bytes32 indexed digest,
        address indexed recipient,
        address indexed by,
        uint64 revokedAt
    );
    event Attested(
        bytes32 indexed digest,
        address indexed attester,
        bytes32 indexed kind,
        bytes32 payloadHash,
        string cid,
        uint64 at,
        uint32 index
    );
    event TagMoved(
        bytes32 indexed digest,
        bytes32 indexed refHash,
        address indexed by,
        string name,
        string tag,
        bytes32 previous,
        uint64 at
    );
    event NameClaimed(bytes32 indexed nameHash, address indexed owner, string name, uint64 at);
    event KeysRegistered(
        address indexed account,
        bytes encryptionKey,
        bytes paillierN,
        uint64 at
    );
    event UsageReported(
        bytes32 indexed digest,
        address indexed reporter,
        uint64 windowStart,
        uint64 windowEnd,
        string cid,
        bytes32 blobHash,
        uint64 at,
        uint32 index
    );

    error InvalidDigest();
    error EmptyCid();
    error InvalidScan();
    error AlreadyPublished(bytes32 digest, address owner);
    error UnknownImage(bytes32 digest);
    error NotImageOwner(bytes32 digest, address caller, address owner);
    error ImageIsRevoked(bytes32 digest);
    error InvalidStatus(uint8 status);
    error StatusUnchanged(bytes32 digest, Status status);
    error ReasonRequired();
    error InvalidRecipient(address recipient);
    error InvalidExpiry(uint64 expiresAt, uint64 now);
    error NotGranted(bytes32 digest, address recipient);
    error InvalidKind();
    error InvalidTag();
    error NotNameOwner(string name, address caller, address owner);
    error InvalidKeys();
    error InvalidWindow(uint64 windowStart, uint64 windowEnd);

    // ---- images -------------------------------------------------------

    function publish(
        bytes32 digest,
        bytes32 configDigest,
        string calldata rootCid,
        Scan calldata scan
    ) external {
        if (digest == 0 || configDigest == 0) revert InvalidDigest();
        if (bytes(rootCid).length == 0) revert EmptyCid();
        _checkScan(scan);
        Image storage img = _images[digest];
        if (img.owner != address(0)) revert AlreadyPublished(digest, img.owner);
        img.owner = msg.sender;
        img.publishedAt = uint40(block.timestamp);
        img.status = Status.TRUSTED;
        img.notScanned = scan.notScanned;
        img.critical = scan.critical;
        img.high = scan.high;
        img.medium = scan.medium;
        img.low = scan.low;
        img.unknown = scan.unknown;
        img.configDigest = configDigest;
        if (scan.reportDigest != 0) img.reportDigest = scan.reportDigest;
        emit ImagePublished(digest, msg.sender, configDigest, rootCid, uint64(block.timestamp), scan);
    }

    /// Appends to the status history. REVOKED is final: revocation sticks.
    function setStatus(bytes32 digest, uint8 status, string calldata reason) external {
        Image storage img = _owned(digest);
        if (img.status == Status.REVOKED) revert ImageIsRevoked(digest);
        if (status == uint8(Status.UNKNOWN) || status > uint8(Status.REVOKED)) {
            revert InvalidStatus(status);
        }
        Status next = Status(status);
        if (next == img.status) revert StatusUnchanged(digest, next);
        if (bytes(reason).length == 0) revert ReasonRequired();
        Status previous = img.status;
        uint32 index = img.statusChanges + 1;
        img.status = next;
        img.statusChanges = index;
        emit StatusChanged(digest, msg.sender, next, previous, reason, uint64(block.timestamp), index);
    }

    // ---- grants -------------------------------------------------------

    /// Grants (or replaces the grant of) a recipient: the manifest named by
    /// manifestCid carries the recipient's wrapped keys, and hashes to manifestHash.
    function grant(
        bytes32 digest,
        address recipient,
        string calldata manifestCid,
        bytes32 manifestHash,
        uint64 expiresAt
    ) external {
        Image storage img = _owned(digest);
        if (img.status == Status.REVOKED) revert ImageIsRevoked(digest);
        if (recipient == address(0)) revert InvalidRecipient(recipient);
        if (bytes(manifestCid).length == 0) revert EmptyCid();
        if (manifestHash == 0) revert InvalidDigest();
        if (expiresAt != 0 && expiresAt <= block.timestamp) {
            revert InvalidExpiry(expiresAt, uint64(block.timestamp));
        }
        _grants[digest][recipient] = Grant({
            grantedAt: uint64(block.timestamp),
            expiresAt: expiresAt,
            revokedAt: 0,
            manifestHash: manifestHash
        });
        emit GrantAdded(
            digest, recipient, msg.sender, manifestCid, manifestHash, expiresAt, uint64(block.timestamp)
        );
    }

    function revokeGrant(bytes32 digest, address recipient) external {
        _owned(digest);
        Grant storage g = _grants[digest][recipient];
        if (g.grantedAt == 0 || g.revokedAt != 0) revert NotGranted(digest, recipient);
        g.revokedAt = uint64(block.timestamp);
        emit GrantRevoked(digest, recipient, msg.sender, uint64(block.timestamp));
    }

    // ---- attestations and usage ----------------------------------------

    /// Anyone may attest to a published image: co-signers, scanners, approvers.
    function attest(bytes32 digest, bytes32 kind, bytes32 payloadHash, string calldata cid)
        external
    {
        Image storage img = _published(digest);
        if (kind == 0) revert InvalidKind();
        if (payloadHash == 0) revert InvalidDigest();
        uint32 index = img.attestations + 1;
        img.attestations = index;
        emit Attested(digest, msg.sender, kind, payloadHash, cid, uint64(block.timestamp), index);
    }

    /// Stores a usage report (a blob of ciphertexts named by cid) for a time window.
    function reportUsage(
        bytes32 digest,
        uint64 windowStart,
        uint64 windowEnd,
        string calldata cid,
        bytes32 blobHash
    ) external {
        Image storage img = _published(digest);
        if (windowStart >= windowEnd) revert InvalidWindow(windowStart, windowEnd);
        if (bytes(cid).length == 0) revert EmptyCid();
        if (blobHash == 0) revert InvalidDigest();
        uint32 index = img.usageReports + 1;
        img.usageReports = index;
        emit UsageReported(
            digest, msg.sender, windowStart, windowEnd, cid, blobHash, uint64(block.timestamp), index
        );
    }

    // ---- tags -----------------------------------------------------------

    /// Points name:tag at an image. The first account to tag a name owns it;
    /// only that account may move the name's tags, and only to its own images.
    function setTag(string calldata name, string calldata tag, bytes32 digest) external {
        Image storage img = _owned(digest);
        if (img.status == Status.REVOKED) revert ImageIsRevoked(digest);
        if (bytes(name).length == 0 || bytes(tag).length == 0) revert InvalidTag();
        bytes32 nameHash = keccak256(bytes(name));
        address nameOwner_ = _nameOwners[nameHash];
        if (nameOwner_ == address(0)) {
            _nameOwners[nameHash] = msg.sender;
            emit NameClaimed(nameHash, msg.sender, name, uint64(block.timestamp));
        } else if (nameOwner_ != msg.sender) {
            revert NotNameOwner(name, msg.sender, nameOwner_);
        }
        bytes32 ref = tagRef(name, tag);
        bytes32 previous = _tags[ref];
        _tags[ref] = digest;
        emit TagMoved(digest, ref, msg.sender, name, tag, previous, uint64(block.timestamp));
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

    /// The record of an image; a digest that was never published reads as
    /// owner 0 and status UNKNOWN.
    function image(bytes32 digest) public view returns (ImageView memory v) {
        Image storage img = _images[digest];
        v.owner = img.owner;
        v.publishedAt = img.publishedAt;
        v.status = img.status;
        v.configDigest = img.configDigest;
        v.critical = img.critical;
        v.high = img.high;
        v.medium = img.medium;
        v.low = img.low;
        v.unknown = img.unknown;
        v.notScanned = img.notScanned;
        v.reportDigest = img.reportDigest;
        v.statusChanges = img.statusChanges;
        v.attestations = img.attestations;
        v.usageReports = img.usageReports;
    }

    /// Many records in one call, for listings.
    function imagesOf(bytes32[] calldata digests) external view returns (ImageView[] memory out) {
        out = new ImageView[](digests.length);
        for (uint256 i = 0; i < digests.length; ++i) {
            out[i] = image(digests[i]);
        }
    }

    function statusOf(bytes32 digest) external view returns (Status) {
        return _images[digest].status;
    }

    function grantOf(bytes32 digest, address recipient) external view returns (Grant memory) {
        return _grants[digest][recipient];
    }

    /// False for a grant that never was, was revoked, or has expired.
    function isGranted(bytes32 digest, address recipient) external view returns (bool) {
        Grant storage g = _grants[digest][recipient];
        return g.grantedAt != 0 && g.revokedAt == 0
            && (g.expiresAt == 0 || block.timestamp < g.expiresAt);
    }

    function resolve(string calldata name, string calldata tag) external view returns (bytes32) {
        return _tags[tagRef(name, tag)];
    }

    function nameOwner(string calldata name) external view returns (address) {
        return _nameOwners[keccak256(bytes(name))];
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

    function _published(bytes32 digest) private view returns (Image storage img) {
        img = _images[digest];
        if (img.owner == address(0)) revert UnknownImage(digest);
    }

    function _owned(bytes32 digest) private view returns (Image storage img) {
        img = _published(digest);
        if (img.owner != msg.sender) revert NotImageOwner(digest, msg.sender, img.owner);
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
