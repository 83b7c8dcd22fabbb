/*
 * luna/profile.h - the deployment profile, shared by the config loader and
 * the appraisal policy so that "production" means one thing everywhere.
 * Production refuses simulated evidence and unsafe settings; development
 * allows the sim platform and says so wherever it shows.
 */
#ifndef LUNA_PROFILE_H
#define LUNA_PROFILE_H

typedef enum luna_profile {
    LUNA_PROFILE_PRODUCTION = 1,
    LUNA_PROFILE_DEVELOPMENT = 2,
} luna_profile;

#endif
